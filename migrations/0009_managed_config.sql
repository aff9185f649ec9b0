-- Configuration as code (PULSER_CONFIG): the objects a YAML file defines are marked with who
-- manages them. `managed_by` is NULL for objects people edit in Slack or over the API, 'config'
-- for those the file owns: those are read-only in Slack and the API, and an apply removes the
-- ones the file no longer lists. Unmanaged objects are never touched by an apply (except that
-- one with the same name as a file entry is adopted by it).

ALTER TABLE routing_rules    ADD COLUMN managed_by text CHECK (managed_by IN ('config'));
ALTER TABLE silences         ADD COLUMN managed_by text CHECK (managed_by IN ('config'));
ALTER TABLE inhibition_rules ADD COLUMN managed_by text CHECK (managed_by IN ('config'));
ALTER TABLE event_routes     ADD COLUMN managed_by text CHECK (managed_by IN ('config'));
ALTER TABLE deploy_services  ADD COLUMN managed_by text CHECK (managed_by IN ('config'));
