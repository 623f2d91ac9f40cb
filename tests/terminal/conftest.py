import pytest


@pytest.fixture
def beat_alive():
    """Beat's heartbeat, recorded as a worker records it, for tests of a healthy terminal: in full stack
    (REDIS_URL set) the health check expects beat, which the test process does not run."""
    from infra.tasks import beat_heartbeat

    beat_heartbeat()
