"""The software company's roles: a first run's lineup, and an incremental run's, where
each role holds the variants of the same steps in the same order."""

from mgpt.actions.incremental import WriteChangedCode, WriteChangeRequest
from mgpt.actions.planning import WritePRD
from mgpt.roles.software import SOFTWARE_ROLES, software_roles


def _steps(roles):
    return [(r.name, [a.step for a in r.actions]) for r in roles]


def test_an_incremental_run_has_the_same_roles_doing_the_same_steps():
    first, inc = software_roles(), software_roles(incremental=True)
    assert [r.name for r in first] == [r.name for r in inc] == [cls.name for cls in SOFTWARE_ROLES]
    assert _steps(first) == _steps(inc)
    assert [r.watch for r in first] == [r.watch for r in inc]


def test_each_role_holds_its_steps_variant_in_an_incremental_run():
    first = {r.name: r for r in software_roles()}
    inc = {r.name: r for r in software_roles(incremental=True)}
    assert [type(a) for a in first["ProductManager"].actions] == [WritePRD]
    assert [type(a) for a in inc["ProductManager"].actions] == [WriteChangeRequest]
    assert isinstance(inc["Engineer"].actions[0], WriteChangedCode)
    # Every step that has an incremental variant is replaced by it (RunTests has none).
    for name, role in inc.items():
        for action in role.actions:
            if action.name != "RunTests":
                assert type(action) is not action.step, f"{name} runs {action.name} as in a first run"
