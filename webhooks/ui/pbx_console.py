"""Blueprint `pbx_console`: «Администрирование → АТС» (admin only), the PBX admin's console.

Paths (all under /admin/pbx):
  GET  ""                          templates: shipped or the clinic's own; check, diff, apply
  GET  /t/<name>                   the editor of the clinic's override, variables beside it
  POST /t/<name>                   action=save|check|diff with the editor's text (kept on refusal)
  POST /t/<name>/reset             «Сбросить к исходному»
  GET  /check, /diff               the stored overrides against Asterisk's parser / running files
  POST /apply                      «Применить»: result and Asterisk's output on the page
  GET  /history, /history/<id>     revisions; POST /history/<id>/rollback «Откатить к этой версии»

Everything goes through the injected clinic.pbx_port.PbxConsole (the launcher builds it from
asterisk_conf); this module never touches Asterisk or its files.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import RequestEntityTooLarge

from clinic.pbx_port import CheckResult, FileDiff, PbxConsole, Problem, SaveResult
from webhooks.auth import current_user, require_admin

bp = Blueprint("pbx_console", __name__, url_prefix="/admin/pbx")
bp.before_request(require_admin)

# what the editor's script and the server both say about size (asterisk_conf.console)
MAX_TEMPLATE_KB = 256
NOT_CONNECTED = "АТС не подключена к веб-интерфейсу: консоль недоступна (запустите mis-telephony с Asterisk)."
STATUS = {"applied": "применена", "failed": "не прошла проверку, откат", "rejected": "отклонена"}


def _console() -> PbxConsole:
    console: PbxConsole | None = current_app.extensions.get("mis_pbx_console")
    if console is None:
        page = render_template("admin/pbx_message.html", title="АТС не подключена", text=NOT_CONNECTED)
        abort(make_response(page, 503))
    return console


def _author_id() -> int | None:
    user = current_user()
    return user.id if user is not None else None


def _diff_lines(diff: str) -> list[tuple[str, str]]:
    """(css class, line) for the unified diff view."""
    out: list[tuple[str, str]] = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        out.append((kind, line))
    return out


@bp.app_template_global("pbx_diff_lines")
def pbx_diff_lines(diff: str) -> list[tuple[str, str]]:
    return _diff_lines(diff)


@bp.get("")
def index():  # type: ignore[no-untyped-def]
    return render_template("admin/pbx_index.html", templates=_console().templates(),
                           max_kb=MAX_TEMPLATE_KB)


def _editor(name: str, text: str | None = None, base_version: int | None = None, comment: str = "",
            problems: tuple[Problem, ...] = (), check: CheckResult | None = None,
            diffs: list[FileDiff] | None = None, status: int = 200,
            message: str = "", message_kind: str = "error"):  # type: ignore[no-untyped-def]
    console = _console()
    info = console.template(name)
    if info is None:
        abort(404)
    return render_template(
        "admin/pbx_editor.html",
        info=info,
        text=info.text if text is None else text,
        base_version=info.version if base_version is None else base_version,
        comment=comment,
        variables=console.variables(),
        versions=console.versions(name),
        problems=problems,
        check=check,
        diffs=diffs,
        message=message,
        message_kind=message_kind,
        max_kb=MAX_TEMPLATE_KB,
    ), status


@bp.get("/t/<name>")
def edit(name: str):  # type: ignore[no-untyped-def]
    return _editor(name)


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        abort(400)


@bp.post("/t/<name>")
def post(name: str):  # type: ignore[no-untyped-def]
    console = _console()
    if console.template(name) is None:
        abort(404)
    text = request.form.get("text", "")
    base_version = _int(request.form.get("base_version"))
    comment = request.form.get("comment", "").strip()[:500]
    action = request.form.get("action", "save")
    if action in ("check", "diff"):
        if action == "check":
            check = console.check({name: text})
            return _editor(name, text, base_version, comment, check=check,
                           status=200 if check.ok else 422)
        check, diffs = console.diff({name: text})
        return _editor(name, text, base_version, comment, check=None if check.ok else check,
                       diffs=diffs if check.ok else None, status=200 if check.ok else 422)
    if action != "save":
        abort(400)
    result: SaveResult = console.save(name, text, base_version, _author_id(), comment)
    if result.ok:
        flash(result.message, "success")
        return redirect(url_for("pbx_console.edit", name=name))
    # refused: the admin's text stays in the form, nothing is stored
    return _editor(name, text, base_version, comment, problems=result.problems,
                   status=409 if result.conflict else 422, message=result.message)


@bp.post("/t/<name>/reset")
def reset(name: str):  # type: ignore[no-untyped-def]
    console = _console()
    if console.template(name) is None:
        abort(404)
    result = console.reset(name, _int(request.form.get("base_version")), _author_id(),
                           request.form.get("comment", "").strip()[:500])
    if result.ok:
        flash(result.message, "success")
        return redirect(url_for("pbx_console.edit", name=name))
    return _editor(name, status=409 if result.conflict else 422, message=result.message)


@bp.get("/check")
def check():  # type: ignore[no-untyped-def]
    result = _console().check()
    return render_template("admin/pbx_check.html", check=result), 200 if result.ok else 422


@bp.get("/diff")
def diff():  # type: ignore[no-untyped-def]
    result, diffs = _console().diff()
    return render_template("admin/pbx_diff.html", check=result, diffs=diffs), 200 if result.ok else 422


@bp.post("/apply")
def apply():  # type: ignore[no-untyped-def]
    result = _console().apply(_author_id(), request.form.get("comment", "").strip()[:500])
    page = render_template("admin/pbx_result.html", result=result, what="Применение")
    return page, 200 if result.ok else 422


@bp.get("/history")
def history():  # type: ignore[no-untyped-def]
    return render_template("admin/pbx_history.html", revisions=_console().history(200), status=STATUS)


@bp.get("/history/<int:revision_id>")
def revision(revision_id: int):  # type: ignore[no-untyped-def]
    rev = _console().revision(revision_id)
    if rev is None:
        abort(404)
    return render_template("admin/pbx_revision.html", rev=rev, status=STATUS)


@bp.post("/history/<int:revision_id>/rollback")
def rollback(revision_id: int):  # type: ignore[no-untyped-def]
    result = _console().rollback(revision_id, _author_id(), request.form.get("comment", "").strip()[:500])
    return (render_template("admin/pbx_result.html", result=result, what=f"Откат к ревизии №{revision_id}"),
            200 if result.ok else 422)


def _too_large(_exc: RequestEntityTooLarge):  # type: ignore[no-untyped-def]
    """A paste past the request limit never reaches the form: say what happened, in words."""
    size = (request.content_length or 0) // 1024
    text = (f"Отправлено {size} КБ — это больше, чем может быть в шаблоне (не больше {MAX_TEMPLATE_KB} КБ). "
            "Ничего не сохранено, Asterisk не изменён. Проверьте, что вставлен нужный текст.")
    return render_template("admin/pbx_message.html", title="Слишком большой шаблон", text=text), 413


bp.register_error_handler(RequestEntityTooLarge, _too_large)


def register(app: Flask, console: PbxConsole | None) -> None:
    from webhooks.ui.menu import GROUP_ADMIN, add_menu_item

    app.extensions["mis_pbx_console"] = console
    app.register_blueprint(bp)
    add_menu_item(app, "АТС", "pbx_console.index", admin_only=True, group=GROUP_ADMIN)
