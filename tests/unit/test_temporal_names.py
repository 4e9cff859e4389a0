"""Workflows call activities by name, and `badges.temporal` starts, signals and queries workflows
by name (so neither imports the other's layer): every such name must be one that is registered.
The names are the strings in workflow histories, so they never change either."""

from __future__ import annotations

import ast
import inspect
import pkgutil
import typing

from temporalio import activity, workflow

import badges.activities
import badges.workflows
from badges.temporal import commands
from badges.workers import main as worker_main


def call_name(node: ast.Call) -> str:
    return node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")


def first_string(node: ast.Call) -> str | None:
    if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    return None


def strings_passed(tree: ast.AST, callees: set[str], keywords: frozenset[str] = frozenset()) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if call_name(node) in callees and (name := first_string(node)) is not None:
            found.add(name)
        for keyword in node.keywords:
            if keyword.arg in keywords and isinstance(keyword.value, ast.Constant):
                found.add(keyword.value.value)
    return found


def registered_activities() -> set[str]:
    names = set()
    for module in pkgutil.iter_modules(badges.activities.__path__):
        imported = __import__(f"badges.activities.{module.name}", fromlist=["_"])
        for _, cls in inspect.getmembers(imported, inspect.isclass):
            for _, member in inspect.getmembers(cls, inspect.isfunction):
                definition = activity._Definition.from_callable(member)
                if definition is not None and definition.name:
                    names.add(definition.name)
    return names


def defined_workflows() -> list[workflow._Definition]:
    definitions = []
    for module in pkgutil.iter_modules(badges.workflows.__path__):
        imported = __import__(f"badges.workflows.{module.name}", fromlist=["_"])
        for _, cls in inspect.getmembers(imported, inspect.isclass):
            definition = workflow._Definition.from_class(cls)
            if definition is not None and cls.__module__ == imported.__name__:
                definitions.append(definition)
    return definitions


def worker_activities(listed: str) -> set[str]:
    """The activities the worker process lists in `listed = [...]` (`live_activities`,
    `batch_activities`): the methods named (an activity's name is its method's, as no
    `@activity.defn` here names one otherwise)."""
    names = set()
    for node in ast.walk(ast.parse(inspect.getsource(worker_main))):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == listed:
            assert isinstance(node.value, ast.List)
            names |= {item.attr for item in node.value.elts if isinstance(item, ast.Attribute)}
    assert names, f"no {listed} in the worker"
    return names


def executed_activities(workflow_class: type) -> set[str]:
    """The activities a workflow's module executes, by name."""
    source = inspect.getsource(inspect.getmodule(workflow_class))  # type: ignore[arg-type]
    return strings_passed(ast.parse(source), {"execute_activity", "execute_local_activity"})


def test_every_activity_a_workflow_executes_is_defined_and_registered_by_each_worker_running_it() -> None:
    """A workflow's activities run on its own task queue: the batch worker registers every
    activity a batch workflow executes; the live worker registers both lists (it runs batch
    workflows started on its queue before batch work had one of its own)."""
    live, batch = worker_activities("live_activities"), worker_activities("batch_activities")
    assert live | batch <= registered_activities(), (live | batch) - registered_activities()
    defined = {definition.name for definition in defined_workflows()}
    placed = [*worker_main.LIVE_WORKFLOWS, *worker_main.BATCH_WORKFLOWS]
    assert sorted(cls.__name__ for cls in placed) == sorted(defined), "every workflow on one queue, once"
    for workflow_class in placed:
        used = executed_activities(workflow_class)
        assert used <= registered_activities(), (workflow_class.__name__, used - registered_activities())
        runs_it = batch if workflow_class in worker_main.BATCH_WORKFLOWS else live | batch
        assert used <= runs_it, f"{workflow_class.__name__}'s {used - runs_it} not registered where it runs"


def test_every_workflow_signal_update_and_query_named_by_the_commands_exists() -> None:
    definitions = defined_workflows()
    tree = ast.parse(inspect.getsource(commands))
    workflow_names = strings_passed(
        tree, {"start_workflow", "WithStartWorkflowOperation", "ScheduleActionStartWorkflow"}
    )
    assert workflow_names <= {definition.name for definition in definitions}
    handlers = {
        name for definition in definitions for name in [*definition.signals, *definition.queries, *definition.updates]
    }
    named = strings_passed(tree, {"signal", "query", "execute_update_with_start_workflow"}, frozenset({"start_signal"}))
    assert named and named <= handlers, named - handlers


def test_the_sync_signals_the_commands_take_exist() -> None:
    sync = next(definition for definition in defined_workflows() if definition.name == "BankSyncWorkflow")
    for signals in (commands.SyncStart, commands.SyncSignal):
        assert set(typing.get_args(signals)) <= set(sync.signals)
