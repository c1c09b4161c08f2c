"""site-info.def keys become a SiteConfig; what gip cannot use is ignored or left out, and said with file:line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gip.errors import EXIT_CONFIG, ConfigError, ConfigInputError
from gip.ldifvalue import value_problem
from gip.report import Problem
from gip.siteconfig import (
    POLICY_ALWAYS,
    POLICY_PRODUCTION_ONLY,
    QueueConfig,
    SiteConfig,
    _group_problem,
    load_site_config,
    queue_key,
    site_config_from,
)
from gip.siteinfo import SiteInfo, parse_site_info
from gip.tags import vo_name_problem

DATA = Path(__file__).parent / "data" / "siteinfo"


def config_of(text: str) -> SiteConfig:
    return site_config_from(parse_site_info(text, "site-info.def"))


def test_realistic_site():
    config = load_site_config(DATA / "site-info.def")
    assert config.path == str(DATA / "site-info.def")
    assert config.site_name == "EXAMPLE-T2"
    assert config.ce_host == "ce01.example.org"
    assert config.batch_system == "pbs"
    assert config.vos == ("atlas", "cms", "lhcb", "dteam", "ops")
    assert config.queues == (
        QueueConfig("long", ("atlas", "/atlas/ROLE=production", "cms")),
        QueueConfig("short", ("lhcb", "dteam", "ops", "/ops/ROLE=lcgadmin")),
    )
    assert config.runtime_env == ("LCG-2", "LCG-2_1_0", "GLITE-3_2_0", "R-GMA")
    assert config.ce_state == "PilotSCAS"
    assert config.state_policy == POLICY_PRODUCTION_ONLY
    assert config.values["CE_OS_ARCH"] == "x86_64"
    assert config.values["CE_SI00"] == "2155"
    assert config.values["CE_OTHERDESCR"] == "Cores=4,Benchmark=8.62-HEP-SPEC06"
    assert len(config.values) == 42


def test_realistic_site_states():
    config = load_site_config(DATA / "site-info.def")
    assert config.state_for("long") == "PilotSCAS"
    assert config.state_for("short") == "Closed"
    assert config.state_for(None) == "PilotSCAS"
    assert config.new_state("long", "Production") == "PilotSCAS"
    assert config.new_state("long", "Draining") is None
    long = config.queue("long")
    assert long is not None
    assert long.access_rules() == ("VO:atlas", "VOMS:/atlas/ROLE=production", "VO:cms")


def test_absent_keys():
    config = config_of("# nothing set\nOTHER=1\n")
    assert config == SiteConfig(path="site-info.def", values={"OTHER": "1"})
    assert config.vos is None
    assert config.ce_state is None
    assert config.state_policy == POLICY_PRODUCTION_ONLY
    assert config.queues == ()
    assert config.runtime_env == ()


@pytest.mark.parametrize(
    "text, field, expected",
    [
        ("VOS=", "vos", ()),
        ('VOS="  atlas\n\tcms  "', "vos", ("atlas", "cms")),
        ("VOS='snoplus.snolab.ca t2k.org vo.foo-bar_1'", "vos", ("snoplus.snolab.ca", "t2k.org", "vo.foo-bar_1")),
        ('CE_RUNTIMEENV="\n  LCG-2\n  GLITE-3_2_0\n"', "runtime_env", ("LCG-2", "GLITE-3_2_0")),
        ("CE_RUNTIMEENV=", "runtime_env", ()),
        ("QUEUES=", "queues", ()),
        ("QUEUES='a.b-c_D 9'", "queues", (QueueConfig("a.b-c_D"), QueueConfig("9"))),
        ("QUEUES=long-q\nLONG_Q_GROUP_ENABLE='atlas /atlas/lcg1/ROLE=x'", "queues",
         (QueueConfig("long-q", ("atlas", "/atlas/lcg1/ROLE=x")),)),
        ("QUEUES=q.x\nQ_X_GROUP_ENABLE=dteam", "queues", (QueueConfig("q.x", ("dteam",)),)),
        ("QUEUES=long\nlong_GROUP_ENABLE=dteam", "queues", (QueueConfig("long"),)),
        ("CE_STATE=Special", "ce_state", "Special"),
        ("CE_STATE=production", "ce_state", "production"),
        ("CE_STATE_POLICY=always", "state_policy", POLICY_ALWAYS),
        ("CE_STATE_POLICY=production-only", "state_policy", POLICY_PRODUCTION_ONLY),
        ("SITE_NAME='My Site'", "site_name", "My Site"),
        ("CE_HOST=ce.example.org", "ce_host", "ce.example.org"),
        ("CE_BATCH_SYS=slurm", "batch_system", "slurm"),
        ("SITE_NAME=", "site_name", ""),
    ],
)
def test_keys(text, field, expected):
    assert getattr(config_of(text), field) == expected


def test_queue_state_is_kept_in_values():
    config = config_of("QUEUES='long short'\nCE_STATE=PilotSCAS\nLONG_CE_STATE=Special\n")
    assert config.values["LONG_CE_STATE"] == "Special"
    assert (config.state_for("long"), config.state_for("short")) == ("Special", "PilotSCAS")


@pytest.mark.parametrize(
    "text, line, values",
    [
        ("A=1\nVOS='atlas CMS'", 2, ["CMS"]),
        ("VOS='atlas ../etc'", 1, ["../etc"]),
        ("VOS='atlas a/b .hidden'", 1, ["a/b", ".hidden"]),
        ("VOS='vö'", 1, ["vö"]),
        ("VOS=atlas\n# later override\nVOS='atlas CMS'\n", 3, ["CMS"]),
    ],
)
def test_a_vos_naming_what_cannot_be_a_vo_is_ignored_so_no_vo_loses_its_tags(text, line, values):
    config = config_of(text + "\nCE_STATE=PilotSCAS\nQUEUES=long\n")
    assert [(p.path, p.line, p.subject) for p in config.problems] == [("site-info.def", line, v) for v in values]
    assert config.problems[0].reason.startswith("VOS: a VO name is lower-case")
    assert config.problems[0].reason.endswith("; VOS is ignored, so every VO folder is read")
    assert (config.vos, config.ce_state, config.queues) == (None, "PilotSCAS", (QueueConfig("long"),))


# A state setting gip cannot use costs that setting only: it is left out, as if site-info.def did not
# set it, and reported at its line; the rest of the file still counts.


@pytest.mark.parametrize(
    "text, line, reason, value",
    [
        ("A=1\nCE_STATE=", 2, "CE_STATE cannot be published as GlueCEStateStatus: empty", ""),
        ("CE_STATE='Pilot '", 1, "CE_STATE cannot be published as GlueCEStateStatus: has a leading or trailing space", "Pilot "),
        ("CE_STATE=' Pilot'", 1, "CE_STATE cannot be published as GlueCEStateStatus: has a leading or trailing space", " Pilot"),
        ("CE_STATE=Piloté", 1, "CE_STATE cannot be published as GlueCEStateStatus: not printable ASCII", "Piloté"),
        ("CE_STATE='a\nb'", 1, "CE_STATE cannot be published as GlueCEStateStatus: not printable ASCII", "a\nb"),
        ("CE_STATE='a\tb'", 1, "CE_STATE cannot be published as GlueCEStateStatus: not printable ASCII", "a\tb"),
        ("CE_STATE=xdn:y", 1, "CE_STATE cannot be published as GlueCEStateStatus: holds 'dn:'", "xdn:y"),
        ("\n\nLONG_CE_STATE=", 3, "LONG_CE_STATE cannot be published as GlueCEStateStatus: empty", ""),
        ("QUEUES=long\nLONG_CE_STATE='Pilot\r'", 2, "LONG_CE_STATE cannot be published", "Pilot\r"),
        ("OTHER_Q_CE_STATE='dn: x'", 1, "OTHER_Q_CE_STATE cannot be published", "dn: x"),
        ("_CE_STATE='x dn: y'", 1, "_CE_STATE cannot be published", "x dn: y"),  # the key of a queue without a name
        ("CE_STATE_POLICY=sometimes", 1, "CE_STATE_POLICY is not production-only or always; ignored, so production-only applies", "sometimes"),
        ("CE_STATE_POLICY=", 1, "CE_STATE_POLICY is not production-only or always", ""),
        ("A=1\nCE_STATE_POLICY=Always", 2, "CE_STATE_POLICY is not production-only or always", "Always"),
    ],
)
def test_an_unusable_state_setting_is_ignored_and_reported_at_its_line(text, line, reason, value):
    config = config_of(text + "\nVOS=atlas\nSITE_NAME=X\n")
    assert [(p.path, p.line, p.subject) for p in config.problems] == [("site-info.def", line, value)]
    assert config.problems[0].reason.startswith(reason)
    key = reason.split(" ", 1)[0]
    assert key not in config.values
    assert (config.vos, config.site_name) == (("atlas",), "X")
    assert config.state_policy == POLICY_PRODUCTION_ONLY


@pytest.mark.parametrize(
    "text, line, reason, value, queues",
    [
        ("QUEUES='long sh/ort'", 1, "QUEUES: a queue name is ASCII letters, digits and ._-; that queue is left out",
         "sh/ort", [("long", ())]),
        ("QUEUES='long:x'", 1, "QUEUES: a queue name is", "long:x", []),
        ("QUEUES='lóng short'", 1, "QUEUES: a queue name is", "lóng", [("short", ())]),
        ("QUEUES='long short long'", 1, "QUEUES: a queue listed twice; the second listing is left out", "long",
         [("long", ()), ("short", ())]),
        ("QUEUES=long\n\nLONG_GROUP_ENABLE='atlas ATLAS'", 3, "LONG_GROUP_ENABLE: a VO name is lower-case", "ATLAS",
         [("long", ("atlas",))]),
        ("QUEUES=long\nLONG_GROUP_ENABLE='atlas cms atlas'", 2,
         "LONG_GROUP_ENABLE: listed twice; the second listing is left out", "atlas", [("long", ("atlas", "cms"))]),
        # The GlueVOView's DN holds the FQAN, and DNs compare without case.
        ("QUEUES=long\nLONG_GROUP_ENABLE='/atlas/ROLE=x /atlas/Role=x'", 2, "LONG_GROUP_ENABLE: listed twice",
         "/atlas/Role=x", [("long", ("/atlas/ROLE=x",))]),
        ("QUEUES=long\nLONG_GROUP_ENABLE='/dn:x/ROLE=y cms'", 2, "LONG_GROUP_ENABLE: not a usable FQAN: holds 'dn:'",
         "/dn:x/ROLE=y", [("long", ("cms",))]),
        ("QUEUES=long\nLONG_GROUP_ENABLE='/At/ROLE=y'", 2, "LONG_GROUP_ENABLE: an FQAN starts with /<vo>", "/At/ROLE=y",
         [("long", ())]),
        ("QUEUES=long\nLONG_GROUP_ENABLE=/", 2, "LONG_GROUP_ENABLE: an FQAN starts with /<vo>, and a VO name is empty",
         "/", [("long", ())]),
        ("QUEUES=long\nLONG_GROUP_ENABLE='/atlas/é'", 2,
         "LONG_GROUP_ENABLE: not a usable FQAN: not printable ASCII (a line break, a control or a non-ASCII character); "
         "left out of the queue's access rules", "/atlas/é", [("long", ())]),
    ],
)
def test_a_queue_or_group_gip_cannot_publish_is_left_out_at_its_line(text, line, reason, value, queues):
    config = config_of(text + "\nVOS=atlas\nCE_STATE=PilotSCAS\n")
    assert [(p.path, p.line, p.subject) for p in config.problems] == [("site-info.def", line, value)]
    assert config.problems[0].reason.startswith(reason)
    assert config.queues == tuple(QueueConfig(name, groups) for name, groups in queues)
    assert (config.vos, config.ce_state) == (("atlas",), "PilotSCAS")


def test_unusable_states_cost_only_themselves():
    config = config_of("QUEUES='long short sgm'\nCE_STATE=PilotSCAS\nLONG_CE_STATE=Piloté\nSHORT_CE_STATE=Closed\n"
                       "CE_STATE_POLICY=Always\n")
    assert [(p.line, p.reason.split(" ", 1)[0]) for p in config.problems] == [(3, "LONG_CE_STATE"), (5, "CE_STATE_POLICY")]
    assert "ignored, as if not set" in config.problems[0].reason
    # long takes the site's state, as a queue without a state of its own does; production-only holds.
    assert [config.state_for(q) for q in ("long", "short", "sgm")] == ["PilotSCAS", "Closed", "PilotSCAS"]
    assert config.new_state("long", "Draining") is None
    assert config.new_state("long", "production") == "PilotSCAS"


def test_an_unusable_site_state_leaves_queues_without_one_of_their_own_as_they_are():
    config = config_of("QUEUES='long short'\nCE_STATE='Pilot\x01'\nSHORT_CE_STATE=Closed\n")
    assert config.ce_state is None and "CE_STATE" not in config.values
    assert [config.new_state(q, "Production") for q in ("long", "short")] == [None, "Closed"]


def test_usable_states_are_no_problem():
    assert config_of("CE_STATE=PilotSCAS\nLONG_CE_STATE=Closed\nCE_STATE_POLICY=always\n").problems == ()


def test_group_list_of_a_queue_not_in_queues_is_not_read():
    assert config_of("QUEUES=long\nSHORT_GROUP_ENABLE='BAD VO'").queues == (QueueConfig("long"),)


def test_values_is_a_copy():
    info = parse_site_info("A=1", "s.def")
    config = site_config_from(info)
    info.values["A"] = "2"
    assert config.values == {"A": "1"}


def test_load_missing_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_site_config(tmp_path / "site-info.def")
    assert "cannot read site-info.def: No such file or directory" in str(caught.value)
    assert caught.value.exit_code == EXIT_CONFIG


def test_load_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "site-info.def"
    path.write_text("SITE_NAME=x\nCE_HOST=$(hostname -f)\n")
    with pytest.raises(ConfigInputError) as caught:
        load_site_config(str(path))
    assert str(caught.value) == f"{path}:2: unsupported shell syntax '$('"


# site_config_from checks the queues and their groups all at once, as a site may
# have thousands. It must keep, leave out and say exactly what checking every
# setting one by one, in order, as written plainly here, does.


def one_by_one(info: SiteInfo) -> SiteConfig:
    values = dict(info.values)
    ignored = []
    for key, value in info.values.items():
        if re.fullmatch(r"CE_STATE|[A-Z0-9_]*_CE_STATE", key) and value_problem(value) is not None:
            reason = f"{key} cannot be published as GlueCEStateStatus: {value_problem(value)}; ignored, as if not set"
            ignored.append(Problem(info.path, info.where(key), reason, value))
            del values[key]
    if values.get("CE_STATE_POLICY", POLICY_PRODUCTION_ONLY) not in (POLICY_PRODUCTION_ONLY, POLICY_ALWAYS):
        reason = "CE_STATE_POLICY is not production-only or always; ignored, so production-only applies"
        ignored.append(Problem(info.path, info.where("CE_STATE_POLICY"), reason, values.pop("CE_STATE_POLICY")))
    vos = tuple(info.values["VOS"].split()) if "VOS" in info.values else None
    for vo in vos or ():
        if vo_name_problem(vo) is not None:
            reason = f"VOS: {vo_name_problem(vo)}; VOS is ignored, so every VO folder is read"
            ignored.append(Problem(info.path, info.where("VOS"), reason, vo))
    if any(vo_name_problem(vo) is not None for vo in vos or ()):
        vos = None
    names = []
    for name in info.values.get("QUEUES", "").split():
        if re.fullmatch(r"[A-Za-z0-9._-]+", name) is None:
            reason = "QUEUES: a queue name is ASCII letters, digits and ._-; that queue is left out"
            ignored.append(Problem(info.path, info.where("QUEUES"), reason, name))
        elif name in names:
            reason = "QUEUES: a queue listed twice; the second listing is left out"
            ignored.append(Problem(info.path, info.where("QUEUES"), reason, name))
        else:
            names.append(name)
    queues = []
    for name in names:
        key = f"{queue_key(name)}_GROUP_ENABLE"
        groups = []
        for group in info.values.get(key, "").split():
            if _group_problem(group) is not None:
                reason = f"{key}: {_group_problem(group)}; left out of the queue's access rules"
                ignored.append(Problem(info.path, info.where(key), reason, group))
            elif any(group.lower() == kept.lower() for kept in groups):
                reason = f"{key}: listed twice; the second listing is left out"
                ignored.append(Problem(info.path, info.where(key), reason, group))
            else:
                groups.append(group)
        queues.append(QueueConfig(name, tuple(groups)))
    return SiteConfig(
        path=info.path,
        values=values,
        site_name=values.get("SITE_NAME"),
        ce_host=values.get("CE_HOST"),
        vos=vos,
        queues=tuple(queues),
        batch_system=values.get("CE_BATCH_SYS"),
        runtime_env=tuple(values.get("CE_RUNTIMEENV", "").split()),
        ce_state=values.get("CE_STATE"),
        state_policy=values.get("CE_STATE_POLICY", POLICY_PRODUCTION_ONLY),
        problems=tuple(ignored),
    )


def mostly(common, rare):
    """``common`` seven times in eight, so that most generated sites get to their queues."""
    return st.integers(0, 7).flatmap(lambda n: rare if n == 0 else common)


queue_names = mostly(
    st.sampled_from(["long", "short", "q.x", "q-x", "Q_X", "9", "a.b-c"]),
    st.sampled_from(["sh/ort", "lóng", "long:x", "-", "é"]),
)
# Refused groups are frequent: which of several is named first matters.
group_names = st.sampled_from(
    ["atlas", "cms", "t2k.org", "/atlas/ROLE=production", "/cms", "/t2k.org/x"]
    + ["ATLAS", "/", "/At/x", "/atlas/dn:x", "é", "-x", "/atlas/é"]
)
group_lists = st.lists(group_names, max_size=3).map(" ".join)
state_keys = st.sampled_from(["CE_STATE", "LONG_CE_STATE", "Q_X_CE_STATE", "long_CE_STATE", "ACE_STATE", "CE_STATE_POLICY",
                              "_CE_STATE"])
states = mostly(st.sampled_from(["Production", "Closed", "always"]), st.sampled_from(["", " x", "a dn: b", "sometimes"]))
separators = st.sampled_from([" ", "\n ", "\t"])


@st.composite
def site_keys(draw):
    """site-info.def keys in the order they are set: QUEUES, group lists (mostly of listed queues), states, VOS."""
    names = draw(st.lists(queue_names, max_size=6))
    keyed = draw(st.lists(st.one_of(st.sampled_from(names or ["none"]).map(queue_key), st.just("OTHER")), max_size=8))
    settings_ = [("QUEUES", draw(separators).join(names))]
    settings_ += [(f"{key}_GROUP_ENABLE", draw(group_lists)) for key in keyed]
    settings_ += draw(st.lists(st.tuples(state_keys, states), max_size=3))
    settings_ += draw(st.lists(st.tuples(st.just("VOS"), mostly(st.just("atlas cms"), st.just("CMS"))), max_size=1))
    return draw(st.permutations(settings_))


@settings(max_examples=500, deadline=None)
@given(settings_=site_keys())
def test_queues_groups_and_states_are_checked_as_one_by_one(settings_):
    values = {}
    lines = {}
    for line, (key, value) in enumerate(settings_, start=1):
        values[key] = value
        lines[key] = line
    info = SiteInfo("site-info.def", values, lines)
    assert site_config_from(info) == one_by_one(info)


def test_every_refused_group_is_named_queue_by_queue():
    config = config_of("QUEUES='a b c'\nC_GROUP_ENABLE='cms /Cms'\nB_GROUP_ENABLE='atlas ATLAS /'\n")
    assert [(p.line, p.subject) for p in config.problems] == [(3, "ATLAS"), (3, "/"), (2, "/Cms")]
    assert config.problems[0].reason == ("B_GROUP_ENABLE: a VO name is lower-case ASCII letters, digits and ._- and "
                                         "starts with a letter or digit; left out of the queue's access rules")
    assert config.queues == (QueueConfig("a"), QueueConfig("b", ("atlas",)), QueueConfig("c", ("cms",)))


def test_many_queues():
    names = [f"q{n:04d}.x-{n % 3}" for n in range(3000)]
    groups = ["atlas", "/cms/ROLE=pilot", "t2k.org"]
    text = f"QUEUES='{' '.join(names)}'\n" + "".join(
        f"{queue_key(name)}_GROUP_ENABLE='{groups[n % 3]} cms'\n" for n, name in enumerate(names)
    )
    config = config_of(text)
    assert config.queues == tuple(QueueConfig(name, (groups[n % 3], "cms")) for n, name in enumerate(names))
    config = config_of(text + "Q2999_X_2_GROUP_ENABLE='cms CMS'\n")
    assert [(p.line, p.subject) for p in config.problems] == [(3002, "CMS")]
    assert config.queues[-1] == QueueConfig(names[-1], ("cms",))


@given(st.text(max_size=8))
def test_queue_key_replaces_every_character_but_ascii_letters_and_digits(name):
    key = queue_key(name)
    assert len(key) == len(name) and key == key.upper()
    assert all(k == (c.upper() if c.isascii() and c.isalnum() else "_") for k, c in zip(key, name))
