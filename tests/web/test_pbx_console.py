"""«Администрирование → АТС» through the Flask test client, with the real console
(asterisk_conf.console: the DB, the renderer, the validator and a throw-away Asterisk in the
chroot) writing into a config folder of the test's own, never the running Asterisk's."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from html import unescape
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from asterisk_conf.console import make_console
from asterisk_conf.render import TEMPLATE_DIR
from clinic.config import Config
from clinic.models import ROLE_ADMIN
from clinic.models.pbx import PbxTemplate, PbxTemplateVersion
from clinic.pbx_port import PbxApplier
from webhooks.app import create_app

from .support import ADMIN_PASSWORD, RecordingApplier, Web

CUSTOM = "extensions_custom.conf.j2"
URL = f"/admin/pbx/t/{CUSTOM}"
GOOD = "[clinic-custom]\nexten => 555,1,Answer()\n same => n,Hangup()\n"


@pytest.fixture()
def conf_dir(tmp_path: Path) -> Path:
    path = tmp_path / "asterisk-etc"
    path.mkdir()
    return path


def console_app(
    config: Config, sessions: sessionmaker[Session], applier: PbxApplier, conf_dir: Path
) -> Flask:
    """The web app with the real console writing into `conf_dir` (the browser tests serve it too)."""
    own = dataclasses.replace(config, pbx=dataclasses.replace(config.pbx, conf_dir=conf_dir))
    return create_app(own, pbx_apply=applier, pbx_console=make_console(own, sessions),
                      session_factory=sessions)  # fmt: skip


@pytest.fixture()
def app(config: Config, sessions: sessionmaker[Session], applier: RecordingApplier, conf_dir: Path) -> Flask:
    app = console_app(config, sessions, applier, conf_dir)
    app.config["TESTING"] = True
    return app


def _textarea(html: str) -> str:
    m = re.search(r'<textarea[^>]*name="text"[^>]*>(.*?)</textarea>', html, re.S)
    assert m, "no editor on the page"
    return unescape(m.group(1))


def _version(html: str) -> int:
    m = re.search(r'name="base_version" value="(\d+)"', html)
    assert m
    return int(m.group(1))


def _rows(sessions: sessionmaker[Session]) -> list[PbxTemplate]:
    with sessions() as s:
        return list(s.scalars(select(PbxTemplate)))


def _save(web: Web, text: str, version: int, comment: str = "") -> object:
    return web.client.post(URL, data={"text": text, "base_version": version, "comment": comment,
                                      "action": "save", "csrf_token": web.csrf(URL)})


def test_registrars_and_strangers_never_reach_the_console(anon: Web, registrar_web: Web) -> None:
    assert anon.get("/admin/pbx").status_code == 302
    assert registrar_web.get("/admin/pbx").status_code == 403
    assert registrar_web.get(URL).status_code == 403
    assert registrar_web.get("/admin/pbx/history").status_code == 403
    # a registrar's POST is refused on the server, whatever his page showed
    token = registrar_web.csrf("/schedule")
    response = registrar_web.client.post(URL, data={"text": GOOD, "base_version": 0, "action": "save",
                                                    "csrf_token": token})
    assert response.status_code == 403
    assert registrar_web.client.post("/admin/pbx/apply", data={"csrf_token": token}).status_code == 403
    assert "АТС" not in re.sub(r"<main.*", "", registrar_web.text("/schedule"), flags=re.S)


def test_the_list_shows_shipped_and_own_templates_and_the_editor_lists_variables(
    admin_web: Web, sessions: sessionmaker[Session]
) -> None:
    page = admin_web.text("/admin/pbx")
    assert page.count('data-testid="pbx-template-row"') == 11
    assert 'data-name="extensions_custom.conf.j2" data-own="no"' in page
    editor = admin_web.text(URL)
    assert "[clinic-custom]" in _textarea(editor)
    for var in ("users", "sip_domain", "ring_seconds", "trunk"):
        assert "{{ " + var + " }}" in unescape(editor)
    assert _save(admin_web, GOOD, 0, "мой номер 555").status_code == 302
    page = admin_web.text("/admin/pbx")
    assert 'data-name="extensions_custom.conf.j2" data-own="yes"' in page and "своя, версия 1" in page
    editor = admin_web.text(URL)
    assert _textarea(editor) == GOOD and "мой номер 555" in editor
    [row] = _rows(sessions)
    assert (row.name, row.text, row.version) == (CUSTOM, GOOD, 1)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[clinic-custom]\nexten => 556,1,Answer({{ nope }})\n", "неизвестная переменная"),
        ("[clinic-custom]\n{% if %}\n", "Ошибка синтаксиса шаблона extensions_custom.conf.j2, строка 2"),
        ("[clinic-custom]\ninclude => clinic-internal\n", "циклическое подключение контекстов"),
        ("[clinic-custom]\nexten => 557\n", "нужно «шаблон,приоритет,приложение»"),
    ],
)
def test_a_bad_template_is_refused_with_the_reason_and_the_text_stays(
    admin_web: Web, sessions: sessionmaker[Session], conf_dir: Path, text: str, reason: str
) -> None:
    response = _save(admin_web, text, 0)
    assert response.status_code == 422
    page = unescape(response.text)
    assert "Шаблон не сохранён" in page and reason in page
    assert _textarea(response.text) == text
    assert _rows(sessions) == [] and list(conf_dir.iterdir()) == []


def test_two_admins_editing_the_same_template_the_second_save_is_refused(
    app: Flask, admin_web: Web, make_user: Callable[..., int], sessions: sessionmaker[Session]
) -> None:
    make_user("admin2", ADMIN_PASSWORD, ROLE_ADMIN, full_name="Второй Админ")
    other = Web(app.test_client())
    assert other.login("admin2", ADMIN_PASSWORD).status_code == 302
    first_seen = _version(admin_web.text(URL))
    second_seen = _version(other.text(URL))
    assert first_seen == second_seen == 0
    assert _save(admin_web, GOOD, first_seen).status_code == 302
    mine = "[clinic-custom]\nexten => 777,1,Answer()\n"
    response = _save(other, mine, second_seen)
    assert response.status_code == 409
    assert "шаблон изменён другим пользователем" in response.text.lower()
    assert _textarea(response.text) == mine  # nothing lost: his text is still in the form
    [row] = _rows(sessions)
    assert (row.text, row.version) == (GOOD, 1)
    # after reopening he saves on top of the current version
    assert _save(other, mine, _version(other.text(URL))).status_code == 302
    [row] = _rows(sessions)
    assert (row.text, row.version) == (mine, 2)


def test_reset_returns_to_the_shipped_template_and_keeps_the_versions(
    admin_web: Web, sessions: sessionmaker[Session]
) -> None:
    assert _save(admin_web, GOOD, 0).status_code == 302
    token = admin_web.csrf(URL)
    stale = admin_web.client.post(f"{URL}/reset", data={"base_version": 0, "csrf_token": token})
    assert stale.status_code == 409
    done = admin_web.client.post(f"{URL}/reset", data={"base_version": 1, "csrf_token": token})
    assert done.status_code == 302
    editor = admin_web.text(URL)
    assert "исходная" in editor and _textarea(editor) == (TEMPLATE_DIR / CUSTOM).read_text()
    with sessions() as s:
        assert s.scalars(select(PbxTemplate.text)).one() is None
        assert [v.action for v in s.scalars(select(PbxTemplateVersion).order_by(PbxTemplateVersion.id))] == [
            "saved", "reset"]


def test_a_5_mb_paste_gets_a_clear_message_and_nothing_is_written(
    admin_web: Web, sessions: sessionmaker[Session], conf_dir: Path
) -> None:
    token = admin_web.csrf(URL)
    huge = "; x\n" * (5 * 1024 * 1024 // 4)
    response = admin_web.client.post(URL, data={"text": huge, "base_version": 0, "action": "save",
                                                "csrf_token": token})
    assert response.status_code == 413
    assert "больше, чем может быть в шаблоне (не больше 256 КБ)" in response.text
    # below the request limit but above the template's: refused by the console, text kept
    big = "[clinic-custom]\n" + "; x\n" * (300 * 1024 // 4)
    response = admin_web.client.post(URL, data={"text": big, "base_version": 0, "action": "save",
                                                "csrf_token": token})
    assert response.status_code == 422
    assert "Шаблон слишком большой: 300 КБ, допустимо не больше 256 КБ" in response.text
    assert _rows(sessions) == [] and list(conf_dir.iterdir()) == []


def test_check_and_diff_use_the_editors_text_without_saving(
    admin_web: Web, sessions: sessionmaker[Session], conf_dir: Path
) -> None:
    token = admin_web.csrf(URL)
    response = admin_web.client.post(URL, data={"text": GOOD, "base_version": 0, "action": "check",
                                                "csrf_token": token})
    assert response.status_code == 200, response.text
    assert 'data-testid="pbx-check" data-ok="yes"' in response.text
    response = admin_web.client.post(URL, data={"text": GOOD, "base_version": 0, "action": "diff",
                                                "csrf_token": token})
    assert response.status_code == 200
    page = unescape(response.text)
    assert '<div class="add">+exten => 555,1,Answer()</div>' in page
    assert "extensions.conf (работает сейчас)" in page
    # the secrets of the render never reach the page
    assert admin_web.client.application.config["MIS"].pbx.ami_secret not in page
    assert _rows(sessions) == [] and list(conf_dir.iterdir()) == []


def test_apply_records_a_revision_with_author_and_comment_and_history_shows_it(
    admin_web: Web, sessions: sessionmaker[Session], conf_dir: Path
) -> None:
    assert _save(admin_web, GOOD, 0).status_code == 302
    token = admin_web.csrf("/admin/pbx")
    response = admin_web.client.post("/admin/pbx/apply", data={"comment": "номер 555", "csrf_token": token})
    # no Asterisk runs for this config folder: the files are written for its next start
    assert response.status_code == 200, response.text
    assert 'data-ok="yes"' in response.text and "записана без перезагрузки" in response.text
    assert "exten => 555,1,Answer()" in (conf_dir / "extensions.conf").read_text()
    history = admin_web.text("/admin/pbx/history")
    assert "номер 555" in history and "Петрова Анна Сергеевна" in history
    rev_id = int(re.search(r'data-testid="pbx-revision-row" data-id="(\d+)"', history).group(1))  # type: ignore[union-attr]
    detail = admin_web.text(f"/admin/pbx/history/{rev_id}")
    assert "Откатить к этой версии" in detail and CUSTOM in detail


def test_without_a_pbx_the_console_says_so(
    config: Config, sessions: sessionmaker[Session], admin_id: int
) -> None:
    bare = create_app(config, session_factory=sessions)  # no console injected (e.g. no Asterisk)
    bare.config["TESTING"] = True
    web = Web(bare.test_client())
    assert web.login("admin", ADMIN_PASSWORD).status_code == 302
    response = web.get("/admin/pbx")
    assert response.status_code == 503
    assert "АТС не подключена к веб-интерфейсу" in response.text
