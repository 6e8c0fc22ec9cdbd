"""rcorder: headers parsed as rcorder(8) reads them, start order, and the
one-line errors for cycles, missing providers and scripts without PROVIDE."""
import random
from pathlib import Path

import pytest

from services.core.errors import CommandError
from services.core.exitcodes import ExitStatus
from services.rc.rcorder import main, order, parse_script, scripts_in

RC_D = Path(__file__).resolve().parent.parent / "rc.d"


def script(directory: Path, name: str, provide: str | None = None, require: str = "",
           before: str = "", keyword: str = "shutdown") -> Path:
    """Write an rc.d script with the given header; PROVIDE defaults to its name."""
    header = ["#!/bin/sh", "#"]
    header.append(f"# PROVIDE: {name if provide is None else provide}")
    if require:
        header.append(f"# REQUIRE: {require}")
    if before:
        header.append(f"# BEFORE: {before}")
    if keyword:
        header.append(f"# KEYWORD: {keyword}")
    path = directory / name
    path.write_text("\n".join(header + ["#", ". /etc/rc.subr", 'name="x"', ""]))
    return path


def names(scripts) -> list[str]:
    return [s.name for s in scripts]


def ordered(directory: Path, **kw) -> list[str]:
    return names(order(scripts_in(directory), **kw))


def test_parse_reads_every_header_field(tmp_path):
    path = tmp_path / "svc"
    path.write_text("#!/bin/sh\n#\n# PROVIDE: svc svc_alias\n# REQUIRE: LOGIN db\n"
                    "# REQUIRE: cache\n# BEFORE: web\n# KEYWORD: shutdown nojail\n#\n")
    s = parse_script(path)
    assert (s.path, s.name) == (path, "svc")
    assert s.provides == ("svc", "svc_alias")
    assert s.requires == ("LOGIN", "db", "cache")
    assert s.befores == ("web",)
    assert s.keywords == ("shutdown", "nojail")


def test_parse_stops_at_the_end_of_the_header_block(tmp_path):
    path = tmp_path / "svc"
    path.write_text("#!/bin/sh\n# PROVIDE: svc\n# REQUIRE: db\n\n# REQUIRE: later\n"
                    "echo '# PROVIDE: fake'\n")
    s = parse_script(path)
    assert s.provides == ("svc",) and s.requires == ("db",)


def test_no_provide_is_a_config_error_naming_the_file(tmp_path):
    path = tmp_path / "broken"
    path.write_text("#!/bin/sh\n# REQUIRE: LOGIN\necho hi\n")
    with pytest.raises(CommandError) as e:
        parse_script(path)
    assert e.value.status == ExitStatus.CONFIG == 2
    assert str(path) in str(e.value) and "PROVIDE" in str(e.value)
    assert "\n" not in str(e.value)


def test_require_orders_providers_first(tmp_path):
    script(tmp_path, "a_web", require="c_db b_cache")
    script(tmp_path, "b_cache", require="c_db")
    script(tmp_path, "c_db")
    assert ordered(tmp_path) == ["c_db", "b_cache", "a_web"]


def test_before_puts_a_script_ahead_of_the_provider(tmp_path):
    script(tmp_path, "a_web")
    script(tmp_path, "z_log", before="a_web")
    assert ordered(tmp_path) == ["z_log", "a_web"]


def test_before_an_absent_name_is_ignored(tmp_path):
    script(tmp_path, "b", before="nobody")
    script(tmp_path, "a")
    assert ordered(tmp_path) == ["a", "b"]


def test_require_by_an_alias_provided_name(tmp_path):
    script(tmp_path, "a_web", require="database")
    script(tmp_path, "z_pg", provide="z_pg database")
    assert ordered(tmp_path) == ["z_pg", "a_web"]


def test_every_provider_of_a_name_comes_first(tmp_path):
    script(tmp_path, "a_web", require="storage")
    script(tmp_path, "x_disk", provide="storage")
    script(tmp_path, "y_nfs", provide="storage")
    assert ordered(tmp_path) == ["x_disk", "y_nfs", "a_web"]


def test_capitalised_placeholders_are_satisfied(tmp_path):
    script(tmp_path, "b", require="LOGIN FILESYSTEMS NETWORKING DAEMON SERVERS NETWORK")
    script(tmp_path, "a")
    assert ordered(tmp_path) == ["a", "b"]


def test_a_placeholder_someone_provides_orders_like_any_name(tmp_path):
    script(tmp_path, "a_app", require="LOGIN")
    script(tmp_path, "z_login", provide="LOGIN")
    assert ordered(tmp_path) == ["z_login", "a_app"]


def test_missing_lowercase_provider_is_an_error(tmp_path):
    script(tmp_path, "hearth_api", require="LOGIN hearth_nope")
    with pytest.raises(CommandError) as e:
        order(scripts_in(tmp_path))
    assert str(e.value) == "rcorder: hearth_api requires hearth_nope, which no script provides"
    assert e.value.status == ExitStatus.CONFIG


def test_lowercase_system_names_are_not_placeholders(tmp_path):
    script(tmp_path, "svc", require="mountcritlocal")
    with pytest.raises(CommandError, match="svc requires mountcritlocal"):
        order(scripts_in(tmp_path))


def test_cycle_of_two_is_named_in_order(tmp_path):
    script(tmp_path, "hearth_b", require="hearth_a")
    script(tmp_path, "hearth_a", require="hearth_b")
    with pytest.raises(CommandError) as e:
        order(scripts_in(tmp_path))
    assert str(e.value) == "rcorder: dependency cycle: hearth_a -> hearth_b -> hearth_a"
    assert e.value.status == ExitStatus.CONFIG


def test_cycle_of_three_is_named_in_order(tmp_path):
    script(tmp_path, "hearth_a", require="hearth_c")
    script(tmp_path, "hearth_b", require="hearth_a")
    script(tmp_path, "hearth_c", require="hearth_b")
    script(tmp_path, "hearth_d", require="hearth_a")      # stuck behind the cycle, not in it
    script(tmp_path, "hearth_0")                           # free, orders fine
    with pytest.raises(CommandError) as e:
        order(scripts_in(tmp_path))
    assert str(e.value) == \
        "rcorder: dependency cycle: hearth_a -> hearth_c -> hearth_b -> hearth_a"


def test_cycle_through_before(tmp_path):
    script(tmp_path, "hearth_a", require="hearth_b")
    script(tmp_path, "hearth_b", before="hearth_a", require="hearth_a")
    with pytest.raises(CommandError, match="hearth_a -> hearth_b -> hearth_a"):
        order(scripts_in(tmp_path))


def test_order_is_deterministic_whatever_the_input_order(tmp_path):
    script(tmp_path, "m_db")
    script(tmp_path, "k_web", require="m_db")
    script(tmp_path, "b_sync", require="m_db")
    script(tmp_path, "q_rotate")
    script(tmp_path, "a_front", require="k_web b_sync")
    script(tmp_path, "z_tunnel", before="a_front")
    scripts = scripts_in(tmp_path)
    expected = ["m_db", "b_sync", "k_web", "q_rotate", "z_tunnel", "a_front"]
    rng = random.Random(7)
    for _ in range(20):
        rng.shuffle(scripts)
        assert names(order(scripts)) == expected


def test_skip_keywords_leave_scripts_out_but_satisfied(tmp_path):
    script(tmp_path, "a_web", require="b_db")
    script(tmp_path, "b_db", keyword="shutdown nostart")
    assert ordered(tmp_path, skip_keywords=("nostart",)) == ["a_web"]


def test_scripts_in_skips_rc_subr_and_scratch_files(tmp_path):
    script(tmp_path, "svc")
    (tmp_path / "rc.subr").write_text("# library, no PROVIDE\n")
    (tmp_path / "svc~").write_text("# editor backup\n")
    (tmp_path / ".svc.swp").write_text("")
    assert names(scripts_in(tmp_path)) == ["svc"]


def test_hearth_rc_d_orders_rotate_before_api():
    got = names(order(scripts_in(RC_D)))
    assert got.index("hearth_rotate") < got.index("hearth_api")


def test_main_prints_paths_and_returns_config_on_error(tmp_path, capsys):
    script(tmp_path, "b", require="a")
    script(tmp_path, "a")
    assert main([str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "a"), str(tmp_path / "b")]
    script(tmp_path, "c", require="nope")
    assert main([str(tmp_path)]) == ExitStatus.CONFIG
    assert capsys.readouterr().err.strip() == "rcorder: c requires nope, which no script provides"
