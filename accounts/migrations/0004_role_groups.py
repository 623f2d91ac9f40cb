"""The four roles as Django groups with their model permissions (docs/rbac.md).

Object-level reach (which broker accounts) comes from memberships and django-guardian grants;
these groups say what kind of thing a role may do at all, for the admin and for checks such as
``user.has_perm("accounts.change_membership")``.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "Owner": [
        "accounts.view_organisation",
        "accounts.change_organisation",
        "accounts.view_membership",
        "accounts.add_membership",
        "accounts.change_membership",
        "accounts.delete_membership",
        "brokers.view_brokeraccount",
        "brokers.add_brokeraccount",
        "brokers.change_brokeraccount",
        "brokers.delete_brokeraccount",
        "brokers.trade_brokeraccount",
    ],
    "Admin": [
        "accounts.view_organisation",
        "accounts.view_membership",
        "accounts.add_membership",
        "accounts.change_membership",
        "accounts.delete_membership",
        "brokers.view_brokeraccount",
        "brokers.add_brokeraccount",
        "brokers.change_brokeraccount",
        "brokers.trade_brokeraccount",
    ],
    "Trader": [
        "accounts.view_organisation",
        "accounts.view_membership",
        "brokers.view_brokeraccount",
        "brokers.trade_brokeraccount",
    ],
    "Viewer": [
        "accounts.view_organisation",
        "brokers.view_brokeraccount",
    ],
}


def create_role_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_role_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_api_credentials"),
        ("brokers", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_role_groups, remove_role_groups)]
