"""End-to-end torture: the real ``hotfix`` command against a served sandbox, interrupted."""
