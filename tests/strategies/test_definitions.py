import pytest

from audit.models import AuditEvent
from strategies.errors import StrategyForbidden, StrategyInvalid, StrategyNameTaken, StrategyUnknown
from strategies.models import StrategyDefinition
from strategies.services import strategy_create, strategy_update

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["owner", "admin", "trader"])
def test_owners_admins_and_traders_create_a_definition_with_its_params_validated(world, role):
    definition = strategy_create(
        actor=getattr(world, role), organisation=world.org, name=f"B {role}", kind="test_buyer", params={"quantity": 3}
    )
    assert definition.params == {"quantity": 3, "symbol": "RELIANCE"}  # defaults filled in by the schema
    assert AuditEvent.objects.filter(action="strategy.definition.created", target_id=str(definition.pk)).exists()


def test_a_viewer_may_not_create_a_definition(world):
    with pytest.raises(StrategyForbidden) as refused:
        strategy_create(actor=world.viewer, organisation=world.org, name="B", kind="test_buyer", params={})
    assert refused.value.status == 403 and refused.value.code == "strategy_forbidden"
    assert not StrategyDefinition.objects.exists()


def test_bad_params_are_refused_naming_the_field(world):
    with pytest.raises(StrategyInvalid) as refused:
        strategy_create(actor=world.trader, organisation=world.org, name="B", kind="test_buyer", params={"quantity": 0})
    assert refused.value.status == 422 and refused.value.extra["field"] == "quantity"
    with pytest.raises(StrategyInvalid) as refused:
        strategy_create(actor=world.trader, organisation=world.org, name="B", kind="test_buyer", params={"bogus": 1})
    assert refused.value.extra["field"] == "bogus"
    assert not StrategyDefinition.objects.exists()


def test_an_unknown_kind_is_refused(world):
    with pytest.raises(StrategyUnknown):
        strategy_create(actor=world.trader, organisation=world.org, name="B", kind="no_such", params={})


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "a\x00b", 12])
def test_a_malformed_name_is_refused(world, name):
    with pytest.raises(StrategyInvalid) as refused:
        strategy_create(actor=world.trader, organisation=world.org, name=name, kind="test_buyer", params={})
    assert refused.value.extra["field"] == "name"


def test_a_name_is_unique_in_the_organisation(world, definition):
    with pytest.raises(StrategyNameTaken) as refused:
        strategy_create(actor=world.trader, organisation=world.org, name="Buyer", kind="test_buyer", params={})
    assert refused.value.status == 409


def test_an_update_validates_the_new_params_and_is_audited(world, definition):
    with pytest.raises(StrategyInvalid) as refused:
        strategy_update(actor=world.trader, definition=definition, params={"quantity": "many"})
    assert refused.value.extra["field"] == "quantity"
    updated = strategy_update(actor=world.admin, definition=definition, params={"quantity": 5}, name="Buyer 5")
    assert updated.params["quantity"] == 5 and updated.name == "Buyer 5"
    assert AuditEvent.objects.filter(action="strategy.definition.updated").count() == 1


def test_a_viewer_may_not_update_a_definition(world, definition):
    with pytest.raises(StrategyForbidden):
        strategy_update(actor=world.viewer, definition=definition, params={"quantity": 5})


def test_the_admin_shows_strategies_read_only(world, definition, rf):
    from django.contrib.admin.sites import site

    from accounts.models import User
    from strategies.models import AlgoId, Deployment

    request = rf.get("/")
    request.user = User.objects.create_superuser("root", password=None)
    for model in (StrategyDefinition, AlgoId, Deployment):
        model_admin = site._registry[model]
        assert model_admin.has_view_permission(request)
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request, None)
        assert not model_admin.has_delete_permission(request, None)


def test_members_of_every_role_read_the_organisations_definitions_and_outsiders_none(world, definition):
    from accounts.models import User
    from strategies.selectors import strategy_list_for_user

    for member in (world.owner, world.admin, world.trader, world.viewer):
        assert list(strategy_list_for_user(user=member)) == [definition]
    assert not strategy_list_for_user(user=User.objects.create_user("outsider")).exists()
