"""The PBX console against the real Asterisk and real phones: an override that adds an
extension is applied and a baresip phone reaches it, a rollback removes it, and every kind of
bad input is refused with its reason while the running configuration stays byte for byte and
tag for tag what it was."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sip_phone import BaresipPhone, Event, event_type
from sqlalchemy import delete, select

from asterisk_conf import runtime
from asterisk_conf.console import Console
from asterisk_conf.render import TEMPLATE_DIR
from clinic.models import REVISION_APPLIED, REVISION_REJECTED, ConfigRevision, User
from clinic.models.pbx import PbxTemplate

from .pbxkit import Pbx, add_phone_user

pytestmark = pytest.mark.pbx

CUSTOM = "extensions_custom.conf.j2"
ECHO_555 = "[clinic-custom]\nexten => 555,1,Answer()\n same => n,Wait(60)\n same => n,Hangup()\n"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def console(pbx: Pbx) -> Iterator[Console]:
    console = Console(pbx.config, pbx.sessions)
    # every test starts from the shipped templates, applied
    _drop_overrides(pbx)
    assert console.apply(None, "тест: исходные шаблоны").ok
    try:
        yield console
    finally:
        _drop_overrides(pbx)
        result = console.apply(None, "тест: снова исходные шаблоны")
        assert result.ok, result.message


def _drop_overrides(pbx: Pbx) -> None:
    with pbx.sessions() as s:
        s.execute(delete(PbxTemplate))
        s.commit()


def _disk(pbx: Pbx) -> dict[str, bytes]:
    conf = pbx.config.pbx.conf_dir
    return {p.name: p.read_bytes() for p in sorted(conf.glob("*.conf"))}


def _running(pbx: Pbx) -> tuple[str, str]:
    """What the running Asterisk has loaded: its config tag and its custom context."""
    globals_ = runtime.cli(pbx.config.pbx, "dialplan show globals")
    tag = re.search(r"MIS_CONFIG_TAG=(\w+)", globals_)
    assert tag, globals_
    return tag.group(1), runtime.cli(pbx.config.pbx, "dialplan show clinic-custom")


def _dial(phone: BaresipPhone, number: str) -> Event:
    """Dial from the phone; the first of CALL_ESTABLISHED / CALL_CLOSED."""
    mark = phone.ctrl.mark()  # type: ignore[union-attr]
    phone.dial(f"sip:{number}@127.0.0.1:5060")
    return phone.wait_for_event(lambda e: e.get("type") in ("CALL_ESTABLISHED", "CALL_CLOSED"), 15, mark)


def _hang_up(phone: BaresipPhone) -> None:
    mark = phone.ctrl.mark()  # type: ignore[union-attr]
    phone.hangup()
    phone.wait_for_event(event_type("CALL_CLOSED"), 10, mark)


def test_an_override_adds_an_extension_a_phone_dials_it_and_rollback_removes_it(
    pbx: Pbx, phones: dict[str, BaresipPhone], console: Console
) -> None:
    phone = phones["101"]
    baseline = console.history(1)[0]
    assert baseline.status == REVISION_APPLIED and baseline.can_rollback
    assert _dial(phone, "555")["type"] == "CALL_CLOSED"  # no such number yet

    saved = console.save(CUSTOM, ECHO_555, 0, None, "номер 555")
    assert saved.ok, saved.problems
    _, diffs = console.diff()
    changed = {d.name: d.diff for d in diffs if d.diff}
    assert "+exten => 555,1,Answer()" in changed.pop("extensions.conf")
    # elsewhere only the render's fingerprint moved (endpoints carry it as set_var)
    for text in changed.values():
        edits = [ln for ln in text.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
        assert edits and all("MIS_CONFIG_TAG=" in ln for ln in edits), edits

    applied = console.apply(None, "номер 555 для проверки")
    assert applied.ok, applied.message
    assert "dialplan reload" in applied.output  # what Asterisk answered is kept for the page
    assert "555" in _running(pbx)[1]
    assert _dial(phone, "555")["type"] == "CALL_ESTABLISHED"
    _hang_up(phone)
    assert all(not d.diff for d in console.diff()[1])  # Asterisk runs what is stored

    back = console.rollback(baseline.id, None, "убрать 555")
    assert back.ok, back.message
    assert "555" not in _running(pbx)[1]
    assert _dial(phone, "555")["type"] == "CALL_CLOSED"
    # the rollback is a revision of its own, and the stored override went back too
    latest = console.history(1)[0]
    assert (latest.status, latest.comment) == (REVISION_APPLIED, "убрать 555")
    info = console.template(CUSTOM)
    assert info is not None and not info.is_override and info.version == 2


def _shipped(name: str) -> str:
    return (TEMPLATE_DIR / name).read_text()


def _without_inbound(text: str) -> str:
    out = re.sub(r"\n\[clinic-inbound\]\n.*?(?=\n\[)", "\n", text, flags=re.S)
    assert "[clinic-inbound]" not in out
    return out


BAD = {
    "jinja syntax": (CUSTOM, "[clinic-custom]\n{% if %}\n", "Ошибка синтаксиса шаблона"),
    "undefined variable": (CUSTOM, "[clinic-custom]\nexten => 556,1,Answer({{ nope }})\n",
                           "неизвестная переменная"),
    "asterisk syntax": ("pjsip_custom.conf.j2", "[my-aor]\ntype=aor\nmax_contacts=1\nbogus_option=yes\n",
                        "Asterisk: Could not find option suitable for category 'my-aor' "
                        "named 'bogus_option'"),
    "no clinic-inbound": ("extensions.conf.j2", None, "нет обязательного контекста [clinic-inbound]"),
    "include loop": (CUSTOM, "[clinic-custom]\ninclude => clinic-internal\n",
                     "циклическое подключение контекстов (include): clinic-internal → clinic-custom → "
                     "clinic-internal"),
    "5 MB paste": (CUSTOM, "; x\n" * (5 * 1024 * 1024 // 4), "Шаблон слишком большой: 5120 КБ"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_and_the_running_config_is_untouched(
    pbx: Pbx, phones: dict[str, BaresipPhone], console: Console, case: str
) -> None:
    name, text, reason = BAD[case]
    if text is None:
        text = _without_inbound(_shipped(name))
    disk, running = _disk(pbx), _running(pbx)
    revisions = len(console.history(1000))

    checked = console.check({name: text})
    assert not checked.ok and reason in " ".join(str(p) for p in checked.problems), checked.problems
    saved = console.save(name, text, 0, None, case)
    assert not saved.ok and reason in saved.message + " ".join(str(p) for p in saved.problems)
    with pbx.sessions() as s:
        assert s.scalars(select(PbxTemplate)).all() == []  # nothing stored
    assert len(console.history(1000)) == revisions  # a refused save is no revision

    if case == "asterisk syntax":
        # Asterisk's own words, with the rendered file and the line it points at
        problem = next(p for p in checked.problems if "bogus_option" in p.message)
        assert problem.file == "pjsip.conf" and problem.line is not None
        assert "bogus_option=yes" in checked.files["pjsip.conf"].splitlines()[problem.line - 1]
    if case == "jinja syntax":
        assert (checked.problems[0].file, checked.problems[0].line) == (CUSTOM, 2)

    if case != "5 MB paste":
        # an override that is broken in the DB already (written by hand, an older version):
        # «Применить» refuses it before anything is written
        with pbx.sessions() as s:
            s.add(PbxTemplate(name=name, text=text, version=1))
            s.commit()
        applied = console.apply(None, case)
        assert not applied.ok and reason in applied.message
        with pbx.sessions() as s:
            rev = s.get(ConfigRevision, applied.revision_id)
            assert rev is not None and rev.status == REVISION_REJECTED and rev.templates == {name: text}
        _drop_overrides(pbx)

    assert _disk(pbx) == disk and _running(pbx) == running
    # and the phones still talk through it
    assert _dial(phones["101"], "102")["type"] == "CALL_ESTABLISHED"
    _hang_up(phones["101"])


def test_a_section_name_with_a_newline_from_a_user_field_stays_a_comment(
    pbx: Pbx, phones: dict[str, BaresipPhone], console: Console
) -> None:
    """A user's name is free text the admin's template may print at a line's start; the
    renderer strips line breaks and brackets from it, so it can never open a section."""
    evil = "Злоумышленник\n[evil]\nexten => 666,1,Answer()\r\n\u2028[evil2]"
    add_phone_user(pbx.sessions, "150", "reg150", "Pw150-secret")
    with pbx.sessions() as s:
        s.scalars(select(User).where(User.sip_id == "reg150")).one().full_name = evil
        s.commit()
    comments = "[clinic-custom]\n{% for u in users %}\n; {{ u.full_name }}\n{% endfor %}\n"
    keys = "[clinic-custom]\n{% for u in users %}\n{{ u.full_name }}=x\n{% endfor %}\n"
    try:
        checked = console.check({CUSTOM: comments})
        assert checked.ok, checked.problems
        ext = checked.files["extensions.conf"]
        [line] = [ln for ln in ext.splitlines() if "Злоумышленник" in ln]
        assert line.startswith("; Злоумышленник evil exten = 666,1,Answer() evil2")
        assert not re.search(r"^\s*\[evil", ext, re.M) and not re.search(r"^exten => 666", ext, re.M)
        saved = console.save(CUSTOM, comments, 0, None, "имена")
        assert saved.ok, saved.problems
        assert console.apply(None, "имена в комментариях").ok
        assert "There is no existence of 'evil' context" in runtime.cli(pbx.config.pbx, "dialplan show evil")
        assert "666" not in runtime.cli(pbx.config.pbx, "dialplan show clinic-custom")
        # printed where the parser reads a key, it is refused, not half-applied
        refused = console.check({CUSTOM: keys})
        assert not refused.ok
        # a SIP ID with a line break never renders at all
        with pbx.sessions() as s:
            s.scalars(select(User).where(User.sip_id == "reg150")).one().sip_id = "reg150\n[evil]"
            s.commit()
        bad = console.check()
        assert not bad.ok and "Недопустимый SIP ID" in str(bad.problems[0])
    finally:
        with pbx.sessions() as s:
            s.execute(delete(User).where(User.extension == "150"))
            s.commit()


def _cli(pbx: Pbx, *args: str, stdin: str = "", editor: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MIS_DATA_DIR": str(pbx.config.data_dir), "DATABASE_URL": pbx.config.database_url,
           "MIS_PBX_MODE": "local", "EDITOR": editor or "false"}
    for var in ("MIS_ASTERISK_CONF_DIR", "MIS_ARI_URL", "MIS_AMI_HOST", "MIS_AMI_PORT", "VISUAL"):
        env.pop(var, None)
    return subprocess.run([sys.executable, "-m", "launcher.cli", "pbx", "templates", *args], input=stdin,
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)


def test_the_cli_edits_checks_diffs_applies_and_rolls_back(
    pbx: Pbx, phones: dict[str, BaresipPhone], console: Console, tmp_path: Path
) -> None:
    baseline = console.history(1)[0].id
    broken = _cli(pbx, "edit", CUSTOM, "--file", "-", stdin="[clinic-custom]\n{{ nope }}\n")
    assert broken.returncode == 1 and "неизвестная переменная" in broken.stdout
    # $EDITOR: a script that writes the new text into the file it is given
    new = tmp_path / "new.j2"
    new.write_text(ECHO_555)
    edited = _cli(pbx, "edit", CUSTOM, "--comment", "из редактора", editor=f"cp {new}")
    assert edited.returncode == 0, edited.stdout + edited.stderr
    listed = _cli(pbx, "list")
    assert re.search(r"extensions_custom\.conf\.j2\s+своя, версия 1", listed.stdout)
    diff = _cli(pbx, "diff")
    assert "+exten => 555,1,Answer()" in diff.stdout
    assert _cli(pbx, "check").returncode == 0
    applied = _cli(pbx, "apply", "--comment", "cli")
    assert applied.returncode == 0 and "dialplan reload" in applied.stdout, applied.stdout
    assert _dial(phones["101"], "555")["type"] == "CALL_ESTABLISHED"
    _hang_up(phones["101"])
    history = _cli(pbx, "history", "--limit", "3")
    assert " cli" in history.stdout
    back = _cli(pbx, "rollback", str(baseline))
    assert back.returncode == 0, back.stdout
    assert _dial(phones["101"], "555")["type"] == "CALL_CLOSED"
