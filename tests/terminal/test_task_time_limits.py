"""Every task's soft time limit falls before its hard one, counting the global limits a task inherits:
Celery refuses to send a task whose soft limit is not below its hard limit."""

from django.conf import settings

from config.celery import app as celery_app


def _project_tasks():
    celery_app.loader.import_default_modules()  # what a worker does at start: autodiscovers tasks.py
    return {name: task for name, task in celery_app.tasks.items() if not name.startswith("celery.")}


def test_the_project_registers_its_periodic_tasks():
    tasks = _project_tasks()
    assert {entry["task"] for entry in celery_app.conf.beat_schedule.values()} <= set(tasks)


def test_every_task_has_a_soft_time_limit_below_its_hard_one_counting_the_global_limits():
    assert settings.CELERY_TASK_SOFT_TIME_LIMIT < settings.CELERY_TASK_TIME_LIMIT
    inverted = {
        name: (task.soft_time_limit, task.time_limit)
        for name, task in _project_tasks().items()
        if not task.soft_time_limit < task.time_limit  # both already fall back to the global limits
    }
    assert inverted == {}
