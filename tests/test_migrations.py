"""Migrations apply in order, once, and two runners starting together do not race."""

from __future__ import annotations

import asyncio

from storage import database
from storage.migrations import Migration, apply_migrations, load_migrations


async def test_every_bundled_migration_applies_to_an_empty_database(empty_database_url):
    pool = await database.create_pool(empty_database_url)
    try:
        applied = await apply_migrations(pool)
        assert applied == [m.version for m in load_migrations()]
        assert await pool.fetchval("SELECT to_regclass('envelopes') IS NOT NULL")
    finally:
        await pool.close()


async def test_a_second_run_applies_nothing(empty_database_url):
    pool = await database.create_pool(empty_database_url)
    try:
        await apply_migrations(pool)
        assert await apply_migrations(pool) == []
    finally:
        await pool.close()


async def test_two_runners_at_once_apply_each_migration_once(empty_database_url):
    slow = [
        Migration("0001", "slow", "SELECT pg_sleep(0.3); CREATE TABLE counted (n int);"),
        Migration("0002", "second", "INSERT INTO counted VALUES (1);"),
    ]
    pools = [await database.create_pool(empty_database_url, max_size=2) for _ in range(2)]
    try:
        results = await asyncio.gather(*(apply_migrations(p, slow) for p in pools))
        assert sorted(results, key=len) == [[], ["0001", "0002"]]
        assert await pools[0].fetchval("SELECT count(*) FROM counted") == 1
        assert await pools[0].fetchval("SELECT count(*) FROM schema_migrations") == 2
    finally:
        for p in pools:
            await p.close()


async def test_a_failing_migration_leaves_nothing_half_applied(empty_database_url):
    broken = [
        Migration("0001", "good", "CREATE TABLE a (n int);"),
        Migration("0002", "bad", "CREATE TABLE b (n int); SELECT no_such_function();"),
    ]
    pool = await database.create_pool(empty_database_url)
    try:
        try:
            await apply_migrations(pool, broken)
        except Exception:
            pass
        else:
            raise AssertionError("a broken migration must raise")
        assert await pool.fetchval("SELECT to_regclass('b') IS NULL")
        assert await pool.fetchval("SELECT array_agg(version) FROM schema_migrations") == ["0001"]
    finally:
        await pool.close()


def test_migration_files_are_numbered_and_sorted():
    versions = [m.version for m in load_migrations()]
    assert versions == sorted(versions) and versions[0] == "0001"
