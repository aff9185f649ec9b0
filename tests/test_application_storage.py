"""Application storage under concurrency: edits never undo what heartbeats or the watcher did."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from alerts.applications import clock_after_edit, validate_application
from alerts.heartbeat_rules import apply_heartbeat
from storage import applications


async def registered_and_up(pool, *, at):
    spec = validate_application({"name": "etl", "expected_interval": 600, "grace_period": 60}, default_channel="#ops")
    app = await applications.create_application(pool, spec, created_by=None)
    async with pool.acquire() as conn, conn.transaction():
        clock = (await applications.lock_clocks(conn, [app.uuid]))[app.uuid]
        await applications.save_clocks(conn, [(apply_heartbeat(clock, "success", at).clock, None)])
    return await applications.get_application(pool, app.id)


async def test_an_edit_recomputes_the_deadline_of_an_up_app_from_its_last_heartbeat(pool):
    last = datetime.now(timezone.utc) - timedelta(minutes=1)
    app = await registered_and_up(pool, at=last)
    spec = validate_application({"expected_interval": 120}, default_channel="#ops", current=app.spec)
    updated = await applications.update_application(pool, app.id, spec, clock_after_edit=clock_after_edit)
    assert updated.due_at == last + timedelta(seconds=120)
    assert updated.next_deadline == last + timedelta(seconds=180)


async def test_an_edit_racing_the_watcher_does_not_bring_a_down_app_back_up(pool):
    app = await registered_and_up(pool, at=datetime.now(timezone.utc) - timedelta(hours=1))
    stale = app  # what the editor read before the watcher ran
    assert [r["id"] for r in await applications.claim_overdue(pool)] == [app.id]
    spec = validate_application({"grace_period": 30}, default_channel="#ops", current=stale.spec)
    updated = await applications.update_application(pool, app.id, spec, clock_after_edit=clock_after_edit)
    assert updated.state == "down" and updated.grace_period == 30
    assert updated.next_deadline == (await applications.get_application(pool, app.id)).next_deadline


async def test_an_edit_of_a_deleted_app_changes_nothing(pool):
    app = await registered_and_up(pool, at=datetime.now(timezone.utc))
    await applications.delete_application(pool, app.id)
    spec = validate_application({"grace_period": 30}, default_channel="#ops", current=app.spec)
    assert await applications.update_application(pool, app.id, spec, clock_after_edit=clock_after_edit) is None


async def test_the_attention_list_puts_down_then_late_apps_first_whatever_their_names(pool):
    now = datetime.now(timezone.utc)
    for i in range(30):
        spec = validate_application({"name": f"a-{i:02}", "expected_interval": 600}, default_channel="#ops")
        await applications.create_application(pool, spec, created_by=None)
    late = await registered_and_up(pool, at=now - timedelta(seconds=630))  # due passed, within grace
    await pool.execute("UPDATE applications SET name = 'y-late' WHERE id = $1", late.id)
    down = await registered_and_up(pool, at=now - timedelta(hours=2))
    await pool.execute("UPDATE applications SET name = 'z-down' WHERE id = $1", down.id)
    await applications.claim_overdue(pool)  # marks z-down down; y-late is still within its grace
    first = await applications.list_by_attention(pool, limit=3)
    assert [a.name for a in first] == ["z-down", "y-late", "a-00"]
