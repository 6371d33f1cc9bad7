"""Structural validation of rendered configs, before anything reaches Asterisk.

Asterisk itself is lenient: a bad line is logged and skipped, and a reload "succeeds". So we
parse the text the way Asterisk's config loader does (sections, templates, `key = value`,
`key => value`, `;` comments) and check what our files must contain. Messages are Russian:
they are shown to the PBX admin as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TAG_VAR = "MIS_CONFIG_TAG"  # see render._config_tag
_SECTION = re.compile(r"^\[([^\]]+)\](?:\(([^)]*)\))?$")
_OPTION = re.compile(r"^([A-Za-z0-9_.()-]+)\s*=>?\s*(.*)$")


@dataclass
class Section:
    name: str
    line: int
    is_template: bool = False
    bases: list[str] = field(default_factory=list)
    options: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        for k, v in reversed(self.options):
            if k == key:
                return v
        return None


class ParseError(ValueError):
    pass


def _strip_comment(line: str) -> str:
    if "\\" not in line:  # no escapes (nearly every line): the comment starts at the first ;
        return line.split(";", 1)[0].strip()
    out = []
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            out.append(line[i : i + 2])
            i += 2
            continue
        if ch == ";":
            break
        out.append(ch)
        i += 1
    return "".join(out).strip()


def parse(text: str, name: str = "") -> list[Section]:
    """Parse an Asterisk config file into sections (templates resolved lazily)."""
    sections: list[Section] = []
    current: Section | None = None
    in_block_comment = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if in_block_comment:
            if "--;" not in line:
                continue
            line = line.split("--;", 1)[1]
            in_block_comment = False
        if ";--" in line and "--;" not in line.split(";--", 1)[1]:
            in_block_comment = True
            line = line.split(";--", 1)[0]
        line = _strip_comment(line)
        if not line:
            continue
        if line.startswith("#"):
            raise ParseError(f"{name}:{lineno}: директивы #include/#exec не допускаются")
        m = _SECTION.match(line)
        if m:
            flags = [f.strip() for f in (m.group(2) or "").split(",") if f.strip()]
            current = Section(
                name=m.group(1).strip(),
                line=lineno,
                is_template="!" in flags,
                bases=[f for f in flags if f != "!"],
            )
            sections.append(current)
            continue
        m = _OPTION.match(line)
        if not m:
            raise ParseError(f"{name}:{lineno}: не удалось разобрать строку «{raw.strip()}»")
        if current is None:
            raise ParseError(f"{name}:{lineno}: параметр вне секции")
        current.options.append((m.group(1).strip(), m.group(2).strip()))
    return sections


def resolved(section: Section, by_name: dict[str, Section]) -> Section:
    """The section with its templates' options in front (later values win, as in Asterisk)."""
    options: list[tuple[str, str]] = []
    for base in section.bases:
        tpl = by_name.get(base)
        if tpl is not None:
            options.extend(resolved(tpl, by_name).options)
    return Section(section.name, section.line, section.is_template, section.bases, options + section.options)


def _port(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    port = int(value)
    return port if 1 <= port <= 65535 else None


class _Checker:
    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.errors: list[str] = []
        self.parsed: dict[str, list[Section]] = {}
        self.tags: set[str] = set()

    def err(self, msg: str) -> None:
        self.errors.append(msg)

    def sections(self, fname: str) -> list[Section]:
        return self.parsed.get(fname, [])

    def run(self, required: tuple[str, ...]) -> list[str]:
        for fname in required:
            if fname not in self.files:
                self.err(f"{fname}: файл не сформирован")
        for fname, text in self.files.items():
            try:
                self.parsed[fname] = parse(text, fname)
            except ParseError as exc:
                self.err(str(exc))
        if self.errors:
            return self.errors
        for fname, secs in self.parsed.items():
            self.check_templates(fname, secs)
            if fname == "pjsip.conf":
                self.check_unique_templates(fname, secs)  # objects: per type, in check_pjsip
            else:
                self.check_unique(fname, secs)
        self.check_extensions()
        self.check_pjsip()
        if len(self.tags) > 1:
            self.err(f"{TAG_VAR} различается в pjsip.conf и extensions.conf")
        self.check_rtp()
        self.check_http_ari_manager()
        return self.errors

    def check_unique(self, fname: str, secs: list[Section]) -> None:
        seen: set[str] = set()
        for s in secs:
            if s.name in seen:
                self.err(f"{fname}:{s.line}: секция [{s.name}] повторяется")
            seen.add(s.name)

    def check_unique_templates(self, fname: str, secs: list[Section]) -> None:
        """Asterisk keeps the last of two templates of one name; a second definition would
        silently rewrite every object built on it (a config injection's favourite)."""
        objects = {s.name for s in secs if not s.is_template}
        seen: set[str] = set()
        for s in secs:
            if not s.is_template:
                continue
            if s.name in seen:
                self.err(f"{fname}:{s.line}: шаблон [{s.name}] определён повторно")
            if s.name in objects:
                self.err(f"{fname}:{s.line}: имя шаблона [{s.name}] совпадает с именем объекта")
            seen.add(s.name)

    def check_templates(self, fname: str, secs: list[Section]) -> None:
        templates = {s.name for s in secs if s.is_template}
        for s in secs:
            for base in s.bases:
                if base not in templates:
                    self.err(f"{fname}:{s.line}: секция [{s.name}] ссылается на неизвестный шаблон ({base})")

    # ------------------------------------------------------------ pjsip
    def check_pjsip(self) -> None:
        secs = self.sections("pjsip.conf")
        tpl = {s.name: s for s in secs if s.is_template}
        objs = [resolved(s, tpl) for s in secs if not s.is_template]
        by_type: dict[str, dict[str, Section]] = {}
        for s in objs:
            kind = s.get("type")
            if not kind:
                self.err(f"pjsip.conf:{s.line}: у секции [{s.name}] нет type=")
                continue
            bucket = by_type.setdefault(kind, {})
            if s.name in bucket:
                self.err(f"pjsip.conf:{s.line}: объект [{s.name}] типа {kind} повторяется")
            bucket[s.name] = s
        transports = by_type.get("transport", {})
        if not transports:
            self.err("pjsip.conf: нет ни одного транспорта (type=transport)")
        for t in transports.values():
            bind = t.get("bind") or ""
            host, _, port = bind.rpartition(":")
            if t.get("protocol") in ("ws", "wss"):
                # websockets ride on Asterisk's HTTP server (http.conf): the bind is required
                # by pjsip but not used, an address alone is enough
                if not bind:
                    self.err(f"pjsip.conf:{t.line}: транспорт [{t.name}]: нет bind=")
            elif not host or _port(port) is None:
                self.err(f"pjsip.conf:{t.line}: транспорт [{t.name}]: неверный bind «{bind}»")
            if (t.get("protocol") or "") not in ("udp", "tcp", "tls", "ws", "wss"):
                self.err(f"pjsip.conf:{t.line}: транспорт [{t.name}]: неверный protocol")
        contexts = {s.name for s in self.sections("extensions.conf")}
        auths = by_type.get("auth", {})
        aors = by_type.get("aor", {})
        # a trunk is identified by its address (type=identify), so it needs no inbound auth
        identified = {i.get("endpoint") for i in by_type.get("identify", {}).values()}
        for ident in by_type.get("identify", {}).values():
            if ident.get("endpoint") not in by_type.get("endpoint", {}) or not ident.get("match"):
                self.err(f"pjsip.conf:{ident.line}: identify [{ident.name}]: нужны endpoint= и match=")
        for ep in by_type.get("endpoint", {}).values():
            where = f"pjsip.conf:{ep.line}: абонент [{ep.name}]"
            for key in ("context", "auth", "aors", "allow", "transport"):
                if key == "auth" and ep.name in identified:
                    continue
                if not ep.get(key):
                    self.err(f"{where}: нет параметра {key}=")
            if ep.get("outbound_auth") and ep.get("outbound_auth") not in auths:
                self.err(f"{where}: нет секции auth [{ep.get('outbound_auth')}]")
            if ep.get("context") and ep.get("context") not in contexts:
                self.err(f"{where}: контекст {ep.get('context')} не описан в extensions.conf")
            if ep.get("auth") and ep.get("auth") not in auths:
                self.err(f"{where}: нет секции auth [{ep.get('auth')}]")
            for aor in (ep.get("aors") or "").split(","):
                if aor.strip() and aor.strip() not in aors:
                    self.err(f"{where}: нет секции aor [{aor.strip()}]")
            if ep.get("transport") and ep.get("transport") not in transports:
                self.err(f"{where}: нет транспорта [{ep.get('transport')}]")
            prefix = f"{TAG_VAR}="
            tags = [v.removeprefix(prefix) for k, v in ep.options if k == "set_var" and v.startswith(prefix)]
            if not tags:
                self.err(f"{where}: нет set_var={TAG_VAR}=… (по нему проверяется применение)")
            self.tags.update(tags)
        for au in auths.values():
            where = f"pjsip.conf:{au.line}: auth [{au.name}]"
            kind = au.get("auth_type") or "userpass"
            if not au.get("username"):
                self.err(f"{where}: нет username=")
            if kind == "md5":
                if not re.fullmatch(r"[0-9a-f]{32}", au.get("md5_cred") or ""):
                    self.err(f"{where}: md5_cred должен быть 32 шестнадцатеричных символа")
                if not au.get("realm"):
                    self.err(f"{where}: для auth_type=md5 нужен realm=")
            elif kind == "userpass":
                if not au.get("password"):
                    self.err(f"{where}: нет password=")
            elif kind != "digest":
                self.err(f"{where}: неизвестный auth_type={kind}")
        for aor in aors.values():
            mc = aor.get("max_contacts")
            if mc is not None and not mc.isdigit():
                self.err(f"pjsip.conf:{aor.line}: aor [{aor.name}]: max_contacts должен быть числом")

    # ------------------------------------------------------------ dialplan
    def check_extensions(self) -> None:
        secs = self.sections("extensions.conf")
        names = {s.name for s in secs}
        globals_ = next((s for s in secs if s.name == "globals"), None)
        tag = globals_.get(TAG_VAR) if globals_ else None
        if not tag:
            self.err(f"extensions.conf: в [globals] нет {TAG_VAR}= (по нему проверяется применение)")
        else:
            self.tags.add(tag)
        for s in secs:
            if s.name in ("general", "globals"):
                continue
            has_exten = False
            for key, value in s.options:
                where = f"extensions.conf: [{s.name}] {key} => {value}"
                if key == "exten":
                    parts = value.split(",", 2)
                    if len(parts) < 3 or not parts[0].strip() or not parts[2].strip():
                        self.err(f"{where}: нужно «шаблон,приоритет,приложение»")
                    has_exten = True
                elif key == "same":
                    if not has_exten:
                        self.err(f"{where}: «same» без предшествующего «exten»")
                    if "," not in value:
                        self.err(f"{where}: нужно «приоритет,приложение»")
                elif key == "include":
                    if value.split(",")[0].strip() not in names:  # `include => ctx,<timing>`
                        self.err(f"{where}: подключаемый контекст не описан")
                else:
                    self.err(f"{where}: неизвестная директива")
        if "extensions.conf" in self.files:
            for ctx in REQUIRED_CONTEXTS:
                if ctx not in names:
                    self.err(f"extensions.conf: нет обязательного контекста [{ctx}] "
                             "(на него ссылаются телефоны, транк или mis-telephony)")
        loop = include_loop(secs)
        if loop:
            self.err("extensions.conf: циклическое подключение контекстов (include): " + " → ".join(loop))

    # ------------------------------------------------------------ rtp / http / ari / manager
    def _general(self, fname: str) -> Section | None:
        for s in self.sections(fname):
            if s.name == "general":
                return s
        if fname in self.files:
            self.err(f"{fname}: нет секции [general]")
        return None

    def check_rtp(self) -> None:
        g = self._general("rtp.conf")
        if g is None:
            return
        start, end = _port(g.get("rtpstart")), _port(g.get("rtpend"))
        if start is None or end is None:
            self.err("rtp.conf: rtpstart/rtpend должны быть портами 1–65535")
            return
        if not (1024 <= start < end):
            self.err(f"rtp.conf: неверный диапазон RTP {start}–{end} (нужно 1024 ≤ начало < конец)")
        used = {"SIP": self._sip_port(), "HTTP/ARI": self._port_of("http.conf", "bindport"),
                "AMI": self._port_of("manager.conf", "port")}
        for what, port in used.items():
            if port is not None and start <= port <= end:
                self.err(f"rtp.conf: диапазон RTP {start}–{end} включает порт {what} {port}")

    def _sip_port(self) -> int | None:
        for s in self.sections("pjsip.conf"):
            if s.get("type") == "transport":
                return _port((s.get("bind") or "").rpartition(":")[2])
        return None

    def _port_of(self, fname: str, key: str) -> int | None:
        for s in self.sections(fname):
            if s.name == "general":
                return _port(s.get(key))
        return None

    def check_http_ari_manager(self) -> None:
        g = self._general("http.conf")
        if g is not None:
            if g.get("enabled") != "yes":
                self.err("http.conf: HTTP-сервер выключен, ARI не будет работать")
            if _port(g.get("bindport")) is None:
                self.err("http.conf: неверный bindport")
        ari_users = [s for s in self.sections("ari.conf") if s.get("type") == "user"]
        if "ari.conf" in self.files and not any(s.get("password") for s in ari_users):
            self.err("ari.conf: нет пользователя ARI с паролем")
        g = self._general("manager.conf")
        if g is not None:
            if g.get("enabled") != "yes":
                self.err("manager.conf: AMI выключен")
            if _port(g.get("port")) is None:
                self.err("manager.conf: неверный port")
            users = [s for s in self.sections("manager.conf") if s.name != "general"]
            if not any(s.get("secret") and s.get("permit") for s in users):
                self.err("manager.conf: нет пользователя AMI с secret= и permit=")


# Contexts mis-telephony itself dials into or names in pjsip.conf (ari_app, agi, the trunk).
REQUIRED_CONTEXTS = ("clinic-internal", "clinic-inbound", "clinic-call-log", "clinic-convert-to-stasis",
                     "clinic-loopback")


def include_loop(secs: list[Section]) -> list[str]:
    """A cycle of `include =>` between contexts ([a] includes b, b includes a), as the path
    a → b → a; [] when there is none. Asterisk itself only notices a loop when a call walks it."""
    edges: dict[str, list[str]] = {}
    for s in secs:
        edges.setdefault(s.name, []).extend(v.split(",")[0].strip() for k, v in s.options if k == "include")
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for name in edges:
        if name not in state:
            found = visit(name)
            if found:
                return found
    return []


REQUIRED = ("pjsip.conf", "extensions.conf", "rtp.conf", "http.conf", "ari.conf", "manager.conf")


def validate(files: dict[str, str]) -> list[str]:
    """Return the list of problems (Russian); empty means the files may go to Asterisk."""
    return _Checker(files).run(REQUIRED)
