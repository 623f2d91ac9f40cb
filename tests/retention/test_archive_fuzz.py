"""Whatever happens to an archive's bytes (any file cut short, any bytes changed, the manifest included),
verification never crashes: it reports the damaged file by name, and nothing in storage is changed."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.services import audit_record
from retention.months import Month
from retention.services.archive import archive_month
from retention.services.verify import verify_archive
from retention.storage import archive_storage
from tests.retention.book import Book

pytestmark = pytest.mark.django_db


@pytest.fixture
def archived():
    now = timezone.now()
    Book().order(now, fills=2)
    audit_record(actor=None, action="order.placed", payload={"qty": 2})
    month = Month.containing(now)
    archive_month(month=month, now=month.end)
    storage = archive_storage()
    names = [f"{month}/manifest.json"]
    directories, files = storage.listdir(str(month))
    names += [f"{month}/{name}" for name in files if name != "manifest.json"]
    for directory in directories:
        names += [f"{month}/{directory}/{name}" for name in storage.listdir(f"{month}/{directory}")[1]]
    originals = {name: storage.open(name, "rb").read() for name in names}
    return month, originals


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_is_reported_against_the_damaged_file(archived, data):
    month, originals = archived
    name = data.draw(st.sampled_from(sorted(originals)))
    original = originals[name]
    cut = data.draw(st.integers(min_value=0, max_value=len(original)))
    patch = data.draw(st.binary(min_size=0, max_size=8))
    damaged = original[:cut] + patch + original[cut + len(patch) :] if data.draw(st.booleans()) else original[:cut]
    path = archive_storage().path(name)
    try:
        with open(path, "wb") as handle:
            handle.write(damaged)
        check = verify_archive(month)
        if damaged == original:
            assert check.ok
        elif check.ok:  # only the manifest's layout may change without changing what it says (it is signed)
            assert name.endswith("manifest.json") and json.loads(damaged) == json.loads(original)
        else:
            assert not check.ok
            assert {problem.file for problem in check.problems} == {name}
    finally:
        with open(path, "wb") as handle:
            handle.write(original)
