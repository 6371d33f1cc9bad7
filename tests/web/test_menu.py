"""The top menu: grouped drop-downs, every admin page reachable, none shown to registrars."""

from __future__ import annotations

from .support import Web


def _menu_html(web: Web) -> str:
    html = web.text("/schedule")
    return html[html.index('<nav class="menu"'):html.index("</nav>")]


def test_admin_sees_groups_with_every_admin_page(admin_web: Web) -> None:
    menu = _menu_html(admin_web)
    for group in ("Телефония", "СМС", "Администрирование"):
        assert f"<summary>{group}</summary>" in menu
    admin_part = menu[menu.index("<summary>Администрирование</summary>"):]
    for title in ("ЛПУ → Параметры", "Пользователи системы", "Внешние информационные системы"):
        assert title in admin_part
    assert "Стоп-лист СМС" in menu[menu.index("<summary>СМС</summary>"):]
    assert menu.index("Планировщик") < menu.index("<summary>Телефония</summary>") < menu.index(
        "<summary>Администрирование</summary>"
    )


def test_registrar_sees_no_admin_entries(registrar_web: Web) -> None:
    menu = _menu_html(registrar_web)
    assert "Планировщик" in menu and "Прием по телефону" in menu
    for title in ("Администрирование", "ЛПУ → Параметры", "Рассылка СМС", "Стоп-лист СМС"):
        assert title not in menu
