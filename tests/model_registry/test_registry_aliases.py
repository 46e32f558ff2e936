"""Aliases: compare-and-set, the audit log, rollback, promotion, and refused deletes."""

from __future__ import annotations

import pytest

from regflow.registry import AliasConflict, AliasInUseError, NotFoundError, RegistryError


@pytest.fixture
def three(registry, run_factory):
    for i in range(3):
        registry.register("demo", run_factory(coef=[1.0 + i], mse=0.3 - 0.1 * i))
    return registry


def test_set_alias_compare_and_set(three):
    reg = three
    first = reg.set_alias("demo", "champion", 1, expected=None, actor="flow-run-1", reason="init")
    assert (first.from_version, first.to_version, first.actor) == (None, 1, "flow-run-1")
    assert reg.get_alias("demo", "champion") == 1
    with pytest.raises(AliasConflict) as info:  # it exists already
        reg.set_alias("demo", "champion", 2, expected=None)
    assert (info.value.expected, info.value.actual) == (None, 1)
    with pytest.raises(AliasConflict):  # stale expectation
        reg.set_alias("demo", "champion", 3, expected=2)
    reg.set_alias("demo", "champion", 2, expected=1, metrics={"mse": 0.2, "r2": 0.9})
    assert reg.get_alias("demo", "champion") == 2
    assert reg.resolve("demo@champion").version == 2
    assert reg.resolve("demo:2").aliases == ["champion"]
    # The failed attempts left no trace in the log.
    log = reg.history("demo")
    assert [(e.from_version, e.to_version) for e in log] == [(None, 1), (1, 2)]
    assert log[1].metrics == {"mse": 0.2, "r2": 0.9}
    assert log[0].reason == "init"


def test_alias_to_missing_or_deleted_version_is_refused(three):
    with pytest.raises(NotFoundError):
        three.set_alias("demo", "champion", 9)
    three.delete("demo:3")
    with pytest.raises(NotFoundError, match="deleted"):
        three.set_alias("demo", "champion", 3)


def test_promote_records_the_versions_metrics(three):
    event = three.promote("demo:2", "staging", reason="looks good", actor="user:ann")
    assert event.to_version == 2 and event.alias == "staging"
    assert event.metrics["all"]["mse"] == pytest.approx(0.2)
    assert three.aliases("demo") == {"staging": 2}


def test_rollback_walks_back_through_the_log(three):
    reg = three
    for v in (1, 2, 3):
        reg.promote(f"demo:{v}")
    assert reg.rollback("demo", actor="user:ann").to_version == 2
    assert reg.get_alias("demo", "champion") == 2
    back = reg.rollback("demo")
    assert (back.from_version, back.to_version, back.action) == (2, 1, "rollback")
    with pytest.raises(RegistryError, match="no earlier holder"):
        reg.rollback("demo")
    actions = [(e.action, e.from_version, e.to_version) for e in reg.history("demo", "champion")]
    assert actions == [
        ("set", None, 1),
        ("set", 1, 2),
        ("set", 2, 3),
        ("rollback", 3, 2),
        ("rollback", 2, 1),
    ]


def test_rollback_skips_deleted_holders(three):
    reg = three
    for v in (1, 2, 3):
        reg.promote(f"demo:{v}")
    reg.delete("demo:2")
    assert reg.rollback("demo").to_version == 1


def test_rollback_without_alias_is_not_found(three):
    with pytest.raises(NotFoundError):
        three.rollback("demo")


def test_delete_refused_while_aliased_and_numbers_never_reused(three, run_factory):
    reg = three
    reg.promote("demo:3")
    with pytest.raises(AliasInUseError, match="demo@champion"):
        reg.delete("demo:3")
    with pytest.raises(NotFoundError):  # delete wants an exact version
        reg.delete("demo@champion")
    deleted = reg.delete("demo:2", actor="user:ann")
    assert (deleted.status, deleted.deleted_by) == ("deleted", "user:ann")
    assert not reg.store.exists("demo", 2)
    with pytest.raises(NotFoundError, match="deleted"):
        reg.resolve("demo:2")
    reg.promote("demo:1")  # free version 3, then delete the newest
    reg.delete("demo:3")
    assert reg.resolve("demo").version == 1
    assert reg.register("demo", run_factory()).version == 4  # never 2 or 3 again
    assert [v.version for v in reg.list_versions("demo")] == [1, 4]
    assert [v.version for v in reg.list_versions("demo", include_deleted=True)] == [1, 2, 3, 4]
    assert reg.verify() == []


def test_remove_alias_is_logged(three):
    three.promote("demo:1")
    event = three.remove_alias("demo", "champion", expected=1, reason="retired")
    assert (event.action, event.from_version, event.to_version) == ("remove", 1, None)
    assert three.get_alias("demo", "champion") is None
    three.delete("demo:1")  # nothing holds it any more
