# The paper exchange's book now belongs to the paper app (paper/migrations/0001_initial.py), which
# took over its tables: forget the models here without touching the database.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("brokers", "0004_fewer_indexes"),
        ("paper", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="PaperFill"), migrations.DeleteModel(name="PaperOrder")],
        ),
    ]
