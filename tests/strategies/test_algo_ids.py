import pytest

from audit.models import AuditEvent
from strategies.errors import AlgoIdForbidden, AlgoIdInvalid, AlgoIdTaken
from strategies.models import AlgoId
from strategies.services import algo_id_create, algo_id_deactivate

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_the_owner_and_admins_create_an_algo_id_audited(world, role):
    algo = algo_id_create(actor=getattr(world, role), organisation=world.org, code="NSE-ALGO-1", description="EMA")
    assert algo.is_active and algo.code == "NSE-ALGO-1"
    assert AuditEvent.objects.filter(action="strategy.algo_id.created", target_id=str(algo.pk)).exists()


@pytest.mark.parametrize("role", ["trader", "viewer"])
def test_traders_and_viewers_may_not_manage_algo_ids(world, role):
    with pytest.raises(AlgoIdForbidden) as refused:
        algo_id_create(actor=getattr(world, role), organisation=world.org, code="A1")
    assert refused.value.status == 403 and refused.value.code == "algo_id_forbidden"
    algo = algo_id_create(actor=world.owner, organisation=world.org, code="A1")
    with pytest.raises(AlgoIdForbidden):
        algo_id_deactivate(actor=getattr(world, role), algo_id=algo)
    assert AlgoId.objects.get(pk=algo.pk).is_active


def test_a_member_of_another_organisation_may_not_manage_them(world):
    from accounts.models import Membership, Organisation, Role, User

    other = Organisation.objects.create(name="Other", slug="other")
    outsider = User.objects.create_user("outsider")
    Membership.objects.create(user=outsider, organisation=other, role=Role.OWNER)
    with pytest.raises(AlgoIdForbidden):
        algo_id_create(actor=outsider, organisation=world.org, code="A1")


@pytest.mark.parametrize("code", ["", " ", "x" * 41, "bad code", "a\x00", "-lead", 17, None])
def test_a_malformed_code_is_refused(world, code):
    with pytest.raises(AlgoIdInvalid) as refused:
        algo_id_create(actor=world.owner, organisation=world.org, code=code)
    assert refused.value.status == 422 and refused.value.extra["field"] == "code"


def test_a_code_is_unique_in_the_organisation(world):
    algo_id_create(actor=world.owner, organisation=world.org, code="A1")
    with pytest.raises(AlgoIdTaken) as refused:
        algo_id_create(actor=world.admin, organisation=world.org, code="A1")
    assert refused.value.status == 409


def test_an_algo_id_is_deactivated_not_deleted_and_audited_once(world):
    algo = algo_id_create(actor=world.owner, organisation=world.org, code="A1")
    algo_id_deactivate(actor=world.admin, algo_id=algo, reason="expired approval")
    algo_id_deactivate(actor=world.admin, algo_id=algo)
    assert AlgoId.objects.get(pk=algo.pk).is_active is False
    assert AuditEvent.objects.filter(action="strategy.algo_id.deactivated").count() == 1


def test_the_organisations_algo_ids_are_listed_active_or_all(world):
    from strategies.selectors import algo_id_list

    first = algo_id_create(actor=world.owner, organisation=world.org, code="A1")
    second = algo_id_create(actor=world.owner, organisation=world.org, code="A2")
    algo_id_deactivate(actor=world.owner, algo_id=first)
    assert list(algo_id_list(organisation_id=world.org.pk)) == [first, second]
    assert list(algo_id_list(organisation_id=world.org.pk, active_only=True)) == [second]
