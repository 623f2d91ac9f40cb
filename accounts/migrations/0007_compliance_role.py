"""The Compliance role: its membership choice and its group, which may view the organisation and the
reports (``compliance.view_reports``) and holds no permission to add, change, delete or trade anything."""

from django.contrib.auth.management import create_permissions
from django.db import migrations, models

GROUP = "Compliance"
PERMISSIONS = ["accounts.view_organisation", "compliance.view_reports"]


def create_compliance_role_group(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    for perm in PERMISSIONS:
        app_label, codename = perm.split(".")
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_compliance_role_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_totp_seeds_sealed"),
        ("compliance", "0003_view_reports_permission"),
    ]

    operations = [
        migrations.AlterField(
            model_name="membership",
            name="role",
            field=models.CharField(
                choices=[
                    ("owner", "Owner"),
                    ("admin", "Admin"),
                    ("trader", "Trader"),
                    ("viewer", "Viewer"),
                    ("compliance", "Compliance"),
                ],
                max_length=16,
            ),
        ),
        migrations.RunPython(create_compliance_role_group, remove_compliance_role_group),
    ]
