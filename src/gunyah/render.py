"""Text renderings of decoded objects; `--json` prints their dicts instead.

Nothing here decodes: every value comes from a decoder's dict or object.
"""

from __future__ import annotations

import re
from typing import Any

from . import abi, psci, smccc
from .triage.console import console_text


def printable(text: str) -> str:
    """Text from the system or file being examined, safe for a terminal: control
    and other non-printing characters (escape sequences, bidi overrides) are
    shown as Python escapes, never sent raw."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] if c != "'" else c for c in text)


def hex64(v: int) -> str:
    return f"{v:#018x}"


def hex32(v: int) -> str:
    return f"{v:#010x}"


def function_id(d: dict[str, Any]) -> str:
    call = "fast" if d["fast"] else "yielding"
    conv = "SMC64/HVC64" if d["smc64"] else "SMC32/HVC32"
    owner = d["owner"]
    lines = [f"{hex32(d['value'])}  {d['name'] or 'unknown call'}"]
    lines.append(
        f"  {call} call, {conv}, owner {owner['value']} ({owner['name']}), "
        f"function {d['function']:#06x}" + (", SVE state not live" if d["sve_hint"] else "")
    )
    if not d["valid"]:
        lines.append(
            f"  invalid: bits 23:17 = {d['res0']:#x} must be zero; a hypervisor answers -1"
        )
    g = d.get("gunyah")
    if g is not None:
        cls = g["class"]
        lines.append(
            f"  gunyah: class {cls['name']} ({cls['value']:#04b}), number {g['number']:#06x}"
            + (f" = {g['name']}" if g["name"] else " (not a catalogued call)")
        )
        if g["accepted_form"] and not g["accepted"]:
            lines.append(
                f"  Gunyah answers -1: a {cls['name']} is taken only as {g['accepted_form']}"
            )
    if d.get("kvm"):
        lines.append(f"  kvm: {d['kvm']}")
    return "\n".join(lines)


def hvc_imm(d: dict[str, Any]) -> str:
    imm = d["imm"]
    if d["abi"] == "smccc":
        return f"hvc #{imm:#x}  SMCCC: X0 holds the function ID"
    if d["abi"] == "native":
        name = d["name"] or "not a catalogued call (answers -1)"
        return f"hvc #{imm:#x}  Gunyah native call {d['number']:#x}: {name}"
    return f"hvc #{imm:#x}  no Gunyah ABI uses this immediate (answers -1)"


def uid(d: dict[str, Any]) -> str:
    words = " ".join(hex32(w) for w in d["words"])
    u = d["uuid"] or "-"
    return f"UID:        {u}  ({d['hypervisor']})\n            words {words}"


def identify_result(d: dict[str, Any]) -> str:
    v = d["variant"]
    endian = "big-endian" if d["big_endian"] else "little-endian"
    width = "64-bit" if d["is_64bit"] else "32-bit"
    sched = d["scheduler"]
    lines = [
        f"API info:   {hex64(d['api_info'])}  version {d['api_version']}, {endian}, {width}, "
        f"variant {v['value']:#04x} ({v['name']})",
        "Flags:      " + " ".join(hex64(f) for f in d["flags"]),
        "Features:   " + (" ".join(d["features"]) or "none"),
        f"Scheduler:  {sched['name']} ({sched['value']})",
    ]
    if d["reserved_bits"]:
        lines.append(f"Reserved:   API info bits 55:16 set: {hex64(d['reserved_bits'])}")
    if d["unknown_flag_bits"]:
        bits = ", ".join(f"flags{b['flags']} bit {b['bit']}" for b in d["unknown_flag_bits"])
        lines.append(f"Unknown:    {bits}")
    return "\n".join(lines)


def identification(d: dict[str, Any]) -> str:
    ident = d["identify"]
    lines = []
    if ident is not None:
        lines.append(abi.banner(ident["variant"]["value"], ident["api_version"]))
    else:
        lines.append("Not running under Gunyah")
    lines.append(uid(d["uid"]))
    if ident is not None:
        lines.append(identify_result(ident))
    lines.append(f"Verdict:    {d['verdict']}")
    lines.extend(f"  - {r}" for r in d["reasons"])
    return "\n".join(lines)


def call_result(d: dict[str, Any]) -> str:
    lines = []
    if d["function"] is not None:
        lines.append(function_id(d["function"]))
    else:
        lines.append(hvc_imm(d["hvc"]))
    width = d["width"]
    for i, r in enumerate(d["results"]):
        shown = hex64(r) if width == 64 else hex32(r)
        suffix = _meaning_of(r, width, d["function"]) if i == 0 else ""
        if i == 0 and d["meaning"].get("error") is not None:
            e = d["meaning"]["error"]
            suffix = f"  (Gunyah error {e['code']} {e['name']})"
        lines.append(f"  X{i:<2} = {shown}{suffix}")
    if width == 32 and any(r >> 32 for r in d["registers"][:4]):
        raw = " ".join(hex64(r) for r in d["registers"][:4])
        lines.append(f"  upper halves set (undefined for a 32-bit call): {raw}")
    for key in ("uid", "identify"):
        if d["meaning"].get(key) is not None:
            render = uid if key == "uid" else identify_result
            lines.append(render(d["meaning"][key]))
    if d["meaning"].get("note"):
        lines.append(f"  note: {d['meaning']['note']}")
    return "\n".join(lines)


def _meaning_of(value: int, width: int, function: dict[str, Any] | None) -> str:
    """X0 as a return code: PSCI's names for the standard secure service's
    calls, SMCCC's for the rest."""
    psci_call = function is not None and function["owner"]["value"] == smccc.OWNER_STANDARD
    name = (psci.return_code_name if psci_call else smccc.return_code_name)(value, width)
    return f"  ({smccc.to_signed(value, width)} {name})" if name and value else ""


def personas(rows: list[dict[str, Any]]) -> str:
    width = max(len(r["name"]) for r in rows)
    vw = max(len(r["expected_verdict"]) for r in rows)
    out = [f"{'persona'.ljust(width)}  {'verdict'.ljust(vw)}  description"]
    for r in rows:
        out.append(
            f"{r['name'].ljust(width)}  {r['expected_verdict'].ljust(vw)}  {r['description']}"
        )
        out.append(f"{'':{width + vw + 4}}stands for: {r['build']}")
        rm = r["resource_manager"] or "none (no message queues)"
        out.append(f"{'':{width + vw + 4}}resource manager: {rm}")
        others = {k: v for k, v in r["expected_by_reference"].items() if v != r["expected_verdict"]}
        if others:
            note = ", ".join(f"{v} for a guest of {k}" for k, v in others.items())
            out.append(f"{'':{width + vw + 4}}expected: {note}")
    return "\n".join(out)


def trap_record(d: dict[str, Any]) -> str:
    """One trapped call on one line; `gunyah trace` reads this form back."""
    x0 = d["function_id"] if d["function_id"] is not None else d["arguments"][0]
    name = d["name"] or "unknown"
    results = " ".join(f"{r:#x}" for r in d["results"][:4])
    pc = "(python)" if d["pc"] is None else f"{d['pc']:#018x}"  # the Python driver has no PC
    cpu = "" if d.get("cpu") is None else f"cpu{d['cpu']} "
    vm = "" if d.get("vmid") is None else f"vm{d['vmid']:#x} "
    return f"{vm}{cpu}{pc} {d['conduit']} #{d['imm']:#x} x0={x0:#x} {name} -> {results}"


def fault(d: dict[str, Any], recent: list[dict[str, Any]]) -> str:
    where = f" at address {d['address']:#x}" if d["address"] is not None else ""
    lines = [f"guest stopped: {d['kind']} at pc {d['pc']:#x}{where}: {d['message']}"]
    if recent:
        lines.append("last trapped calls:")
        lines.extend("  " + trap_record(c) for c in recent)
    return "\n".join(lines)


def matrix(d: dict[str, Any]) -> str:
    """The conformance matrix as an aligned table; calls under each failing row."""
    head = ("guest", "persona", "expected", "observed", "result")
    table = [
        (r["guest"], r["persona"], r["expected"], r["observed"], "pass" if r["passed"] else "FAIL")
        for r in d["rows"]
    ]
    widths = [max(len(row[i]) for row in [head, *table]) for i in range(4)]
    ref = d["reference"]
    header = "  ".join(h.ljust(w) for h, w in zip(head, [*widths, 0], strict=True)).rstrip()
    out = [f"expected verdicts: {ref['name']}, {ref['description']}", header]
    for r, row in zip(d["rows"], table, strict=True):
        out.append("  ".join(c.ljust(w) for c, w in zip(row, [*widths, 0], strict=True)).rstrip())
        if not r["passed"]:
            out.extend("      " + trap_record(c) for c in r["calls"])
            if not r["calls"]:
                out.append("      (no trapped calls)")
    out.append(f"{d['total'] - d['failed']} passed, {d['failed']} failed")
    return "\n".join(out)


_MARKS = {"found": "+", "absent": "-", "unreadable": "!", "malformed": "!", "info": "."}


def probe_report(d: dict[str, Any]) -> str:
    lines = [f"Verdict: {d['verdict']}: {printable(d['summary'])}", "Evidence:"]
    rows = [(_MARKS.get(e["status"], "?"), printable(e["source"]), printable(e["meaning"]))
            for e in d["evidence"]]  # fmt: skip
    width = max((len(source) for _, source, _ in rows), default=0)
    for mark, source, meaning in rows:
        lines.append(f"  {mark} {source.ljust(width)}  {meaning}")
    lines.append("(+ found, - absent, ! unreadable or malformed, . for information)")
    if d.get("can_create") or d.get("in_the_way"):
        lines.append("VMs here: " + ("; ".join(d["can_create"]) or "none that this probe sees"))
        lines.extend(f"  in the way: {printable(w)}" for w in d["in_the_way"])
    for k in d.get("known_problems", []):
        lines.append(f"Known problem: {k['title']}")
        lines.append(f"  {printable(k['line'])}")
        if k.get("follows"):
            lines.append(f"  follows from: {k['follows']}: fix that first")
        else:
            lines.append(f"  try: {k['fix']}")
    return "\n".join(lines)


def trace_stats(d: dict[str, Any]) -> str:
    files = ", ".join(d["files"])
    bad = d["malformed"]
    lines = [
        f"{d['calls']} calls in {d['lines']} lines of {files}; {bad['count']} malformed lines",
    ]
    if d["by_call"]:
        lines.append(f"{'count':>12}  {'share':>6}  {'call':<18}  name")
        for r in d["by_call"]:
            if r["conduit"] is None:
                call = "(others)"
            elif r["function_id"] is not None:
                call = f"{r['conduit']} {r['function_id']:#010x}"
            else:
                call = f"{r['conduit']} #{r['imm']:#x}"
            lines.append(f"{r['count']:>12}  {r['share']:>6.1%}  {call:<18}  {r['name']}")
    if d["by_vcpu"]:
        each = ", ".join(f"vCPU {c['cpu']}: {c['count']}" for c in d["by_vcpu"])
        lines.append(f"calls by vCPU: {each}")
    if bad["first"]:
        lines.append(f"malformed lines (first {len(bad['first'])}):")
        lines.extend(f"  {printable(m['file'])}:{m['line']}: {printable(m['text'])}"
                     for m in bad["first"])  # fmt: skip
    return "\n".join(lines)


def trace_call(d: dict[str, Any]) -> str:
    x0 = f"x0={d['r0']:#x}"
    cpu = "" if d["cpu"] is None else f"cpu{d['cpu']} "
    return (f"{d['file']}:{d['line']}: {cpu}{d['conduit']} #{d['imm']:#x} pc={d['pc']:#x} "
            f"{x0} {d['name']}")  # fmt: skip


# Console lines `gunyah boot` shows without --verbose: PSCI and SMCCC
# detection, secondary CPUs, our module and init, the banner, and the end:
# a panic, an oops, a bad access, the reboot's lines (gunyah.triage.console).
_BOOT_LINES = re.compile(
    r"psci:|smccc:|SMCCC|CPU\d+: Booted|smp: Brought up|[Gg]unyah|insmod|"
    + "|".join(re.escape(console_text(k)) for k in ("panic", "oops", "bad-access", "reboot"))
)
_PANIC_TAIL = 40


def boot_report(d: dict[str, Any], verbose: bool, trace: bool) -> str:
    """A boot in text: the console (all of it, or the lines that matter), the
    calls, and how it ended."""
    console: list[str] = d["console"]
    if verbose or d["kernel"] != "linux":  # a test kernel's console is its report
        shown = console
    else:
        shown = [ln for ln in console if _BOOT_LINES.search(ln)]
        if d["stopped_by"] == "panic":  # the panic's own lines, call trace and all
            tail = console[-_PANIC_TAIL:]
            shown = [ln for ln in shown if ln not in tail] + tail
    out = [printable(ln) for ln in shown]
    if d["console_dropped"]:
        out.insert(0, f"({d['console_dropped']} earlier console lines not kept)")
    calls = d["calls"]
    total = len(calls) + d["calls_dropped"]
    if not trace:
        out.append(f"calls: {total} (--trace lists them)")
    else:
        out.append(f"calls: {total}")
        if d["calls_dropped"]:
            out.append(
                f"  ({d['calls_dropped']} earlier calls not kept; the last {len(calls)} follow)"
            )
        out.extend("  " + trap_record(c) for c in calls)
    for m in d["modules"]:
        state = {True: "loaded", False: "FAILED to load", None: "never reached"}[m["loaded"]]
        out.append(f"module: {m['name']} {state}")
    if d.get("vm") is not None:
        out.extend(vm_report(d["vm"]))
    cpus = f"{d['cpus']} vCPU" + ("s" if d["cpus"] > 1 else "")
    out.append(f"stopped: {d['stopped_by']} after {d['boot_seconds']:.2f} s "
               f"(persona {d['persona']}, {cpus})")  # fmt: skip
    vm_problem = d["vm"]["problem"] if d.get("vm") is not None else None
    if d["problem"] and d["problem"] != vm_problem:  # the VM's is said above
        out.append(f"problem: {printable(d['problem'])}")
    if d.get("halted_because"):
        out.append(f"halted: {d['halted_because']}")
    if d["kernel"] != "linux":
        status = d["guest_status"]
        out.append(f"guest status: {'none reported' if status is None else status}")
    else:
        out.append(f"verdict: {d['verdict'] or 'none logged'}")
    return "\n".join(out)


def vm_report(v: dict[str, Any]) -> list[str]:
    """`gunyah boot --vm`'s secondary: its console (the guest's, so printed
    as printable text), how it ended and how its VMM did."""
    vmid = "VMID unknown" if v["vmid"] is None else f"VMID {v['vmid']:#x}"
    rd = v.get("initrd")
    initrd = "" if not rd else (f", {'our' if rd['ours'] else 'your'} initramfs of "
                                f"{rd['bytes']} bytes at {rd['address']:#x}")  # fmt: skip
    n = v.get("cpus", 1)
    cpus = "" if n == 1 else f", {n} vCPUs"
    out = [f"vm: {printable(v['image'])} ({v['kind']}, {v['memory'] >> 20} MiB at "
           f"{v['base']:#x}{cpus}{initrd}, {vmid}) console:"]  # fmt: skip
    if v["console_dropped"]:
        out.append(f"  ({v['console_dropped']} earlier VM console lines not kept)")
    out.extend(f"  | {printable(ln)}" for ln in v["console"])
    end = v["end"]
    if end is None:
        ended = "no exit reported"
    elif end["exit_type"] is None:
        ended = end["status"]
    else:
        ended = (f"{end['status']}, exit type {end['exit_type_name']} ({end['exit_type']}), "
                 f"reason {end['reason_name']} ({end['reason']:#x})")  # fmt: skip
    out.append(f"vm ended: {ended}; {v['exits']} exits")
    test = v.get("test_status")
    if test is not None:  # a kvm-unit-tests test's own code (boot.vm: 0 passed, 38 skipped)
        meaning = {0: "passed", 38: "skipped"}.get(test, "failed")
        out.append(f"vm test: exited {test} ({meaning})")
    hyp = v.get("hypervisor_end")
    said = None if end is None else (end["exit_type"], end["reason"])
    if hyp is not None and said != (hyp["exit_type"], hyp["reason"]):  # the VMM's word differs
        out.append(f"vm ended, as the hypervisor told the RM: exit type "
                   f"{hyp['exit_type_name']} ({hyp['exit_type']}), reason "
                   f"{hyp['reason_name']} ({hyp['reason']:#x})")  # fmt: skip
    status = "no status" if v["vmm_status"] is None else f"exited {v['vmm_status']}"
    if v.get("life_cycle_us") is not None:
        status += f"; the VM's life cycle (create to teardown) {v['life_cycle_us'] / 1000:.1f} ms"
    out.append(f"vmm: {printable(v['vmm'] or 'said nothing at its end')}, {status}")
    if v["problem"]:
        out.append(f"vm problem: {printable(v['problem'])}")
    return out


def junit(d: dict[str, Any]) -> bytes:
    """The conformance matrix as JUnit XML, as CI systems read it: one test
    case per guest and persona, a failure carrying the reason, the calls and
    the console lines behind it; every case's calls in its system-out."""
    import xml.etree.ElementTree as ET

    rows = d["rows"]
    failed = sum(not r["passed"] for r in rows)
    suites = ET.Element("testsuites", name="gunyah conformance", tests=str(len(rows)),
                        failures=str(failed))  # fmt: skip
    suite = ET.SubElement(suites, "testsuite", name="gunyah conformance", tests=str(len(rows)),
                          failures=str(failed), errors="0", skipped="0")  # fmt: skip
    for r in rows:
        case = ET.SubElement(suite, "testcase", classname=f"conformance.{printable(r['guest'])}",
                             name=r["persona"], time=f"{r.get('seconds') or 0:.3f}")  # fmt: skip
        calls = "\n".join(trap_record(c) for c in r["calls"])
        if not r["passed"]:
            message = f"expected {r['expected']}, observed {printable(r['observed'])}"
            body = [message]
            if r.get("reason"):
                body.append(f"reason: {printable(r['reason'])}")
            body += ["calls:", calls] if calls else []
            if r.get("console"):
                body += ["console:", *(printable(ln) for ln in r["console"])]
            failure = ET.SubElement(case, "failure", message=message, type="verdict")
            failure.text = "\n".join(body)
        ET.SubElement(case, "system-out").text = calls
    out: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return out


def rm_exchange(d: dict[str, Any]) -> str:
    req = d["request"]
    name = req["message"] or "unknown message"
    payload = req["payload"] or "none"
    lines = [f"request  {req['message_id']:#010x} {name}, seq {req['seq']}, payload {payload}"]
    sent = ", ".join(f"X0={e:#x} not_full={n}" for e, n in
                     ((s["error"], s["not_full"]) for s in d["sends"]))  # fmt: skip
    lines.append(f"  sent as {len(d['sends'])} message(s): msgqueue_send -> {sent}")
    if d["reply"] is None:
        lines.append(f"  {d['note']}")
        return "\n".join(lines)
    rep = d["reply"]
    if d["rm_error"] is None:
        lines.append(f"reply    {rep['type']} without an error word: {d['payload'] or 'empty'}")
        return "\n".join(lines)
    err = d["rm_error_name"] or "unknown error"
    means = f": {d['rm_error_means']}" if d["rm_error_means"] and d["rm_error"] else ""
    for n in d.get("notifications", ()):
        lines.append(f"notified {n['message_id']:#010x} {n['message'] or 'unknown'}, "
                     f"number {n['seq']}, payload {n['payload'] or 'none'}")
        if n["decoded"] is not None:
            lines.extend(_fields(n["decoded"], "  "))
    lines.append(f"reply    {rep['type']}, seq {rep['seq']}, "
                 f"RM error {d['rm_error']:#x} {err}{means}")
    lines.append(f"  payload {d['payload'] or 'none'}")
    if d["decoded"] is not None:
        lines.extend(_fields(d["decoded"], "  "))
    return "\n".join(lines)


def rm_message(d: dict[str, Any]) -> str:
    name = d["message"] or "not a message ID the resource manager declares"
    kind = ("notification" if d["notification"] else "request") if d["message"] else None
    service = f", {d['service']} {kind}" if d["service"] and kind else ""
    lines = [f"RM message {d['message_id']:#010x}: {name}{service}"]
    if d["error"] is not None:
        err = d["error_name"] or "not an RM error code"
        means = f": {d['error_means']}" if d["error_means"] else ""
        lines.append(f"RM error {d['error']} ({d['error']:#x}): {err}{means}")
    if "payload" in d:
        if d.get("decoded") is None:
            lines.append(f"payload {d['payload'] or 'empty'}: not a shape known for this message")
        else:
            lines.append(f"payload {d['payload'] or 'empty'}")
            lines.extend(_fields(d["decoded"], "  "))
    return "\n".join(lines)


def _fields(d: dict[str, Any], indent: str) -> list[str]:
    """A decoded RM payload's fields, a value's name beside its number."""
    out = []
    for key, value in d.items():
        if key.endswith("_name"):
            continue
        if key == "entries":
            for i, e in enumerate(value):
                out.append(f"{indent}entry {i}:")
                out.extend(_fields(e, indent + "  "))
            continue
        if key == "ids":
            value = ", ".join(f"{e['type']}={e['value']}" for e in value)
        elif isinstance(value, int):
            name = d.get(key + "_name")
            value = f"{value} ({value:#x})" + (f" {name}" if name else "")
        out.append(f"{indent}{key}: {value}")
    return out


def triage(found: list[dict[str, Any]]) -> str:
    """Known failures matched, one block each."""
    if not found:
        return ("no known Gunyah failure in these lines (see 'gunyah probe' for what this "
                "system shows)")  # fmt: skip
    out: list[str] = []
    for f in found:
        out.append(f"{f['title']}  [{f['id']}]")
        out.append(f"  line:  {printable(f['line'])}")
        if f.get("decoded"):
            out.append("  " + rm_message(f["decoded"]).replace("\n", "\n  "))
        if f.get("errno"):
            e = f["errno"]
            out.append(f"  errno {e['number']} is {e['name']}: {e['text']}")
        out.append(f"  cause: {f['cause']}")
        out.append(f"  try:   {f['fix']}")
        if f.get("follows_from"):
            out.append(f"  after: {', '.join(f['follows_from'])} (this line follows from it: "
                       "where the log shows that too, fix that first)")  # fmt: skip
        out.append(f"  sources say: {f['source_says']}")
        out.extend(f"  seen:  {s}" for s in f["sources"])
    return "\n".join(out)
