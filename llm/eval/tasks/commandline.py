"""Command-line argument handling: ``main(argv)`` prints and returns an exit code."""

from mgpt.llm.eval.tasks import T


def _cli(id, description, reference, wrong, checks):
    """A CLI task: ``checks`` are (argv, expected exit code, expected stdout)."""
    tests = "\n".join(
        f"def test_cli_{i}(capsys):\n"
        f"    code = main({argv!r})\n"
        f"    assert (code, capsys.readouterr().out) == ({rc!r}, {out!r})\n"
        for i, (argv, rc, out) in enumerate(checks))
    return T(id, "def main(argv: list[str]) -> int", description + " Print to stdout; return the exit code (do not call sys.exit).",
             reference, wrong, tests=tests)


TASKS = [
    _cli("cli_greet", "`greet NAME [--shout]` prints 'Hello, NAME!' ('HELLO, NAME!' with --shout) and returns 0. Without NAME print 'usage: greet NAME [--shout]' and return 2.",
         "def main(argv):\n    args = [a for a in argv if a != '--shout']\n    if len(args) != 1:\n        print('usage: greet NAME [--shout]')\n        return 2\n    msg = f'Hello, {args[0]}!'\n    print(msg.upper() if '--shout' in argv else msg)\n    return 0",
         "def main(argv):\n    if not argv:\n        print('usage: greet NAME [--shout]')\n        return 2\n    msg = f'Hello, {argv[0]}!'\n    print(msg.upper() if '--shout' in argv else msg)\n    return 0",
         [(["Ann"], 0, "Hello, Ann!\n"), (["--shout", "bo"], 0, "HELLO, BO!\n"), ([], 2, "usage: greet NAME [--shout]\n")]),
    _cli("cli_sum", "`sum N...` prints the sum of the integer arguments and returns 0; if an argument is not an integer print 'error: not a number: X' and return 1. With no arguments print 0.",
         "def main(argv):\n    total = 0\n    for a in argv:\n        try:\n            total += int(a)\n        except ValueError:\n            print(f'error: not a number: {a}')\n            return 1\n    print(total)\n    return 0",
         "def main(argv):\n    print(sum(int(a) for a in argv if a.isdigit()))\n    return 0",
         [(["1", "2", "-3"], 0, "0\n"), (["4", "x"], 1, "error: not a number: x\n"), ([], 0, "0\n")]),
    _cli("cli_repeat", "`repeat TEXT [-n COUNT]` prints TEXT COUNT times (default 1), one per line. A COUNT below 1 or not an integer: print 'error: bad count' and return 2.",
         "def main(argv):\n    import argparse\n    p = argparse.ArgumentParser(prog='repeat')\n    p.add_argument('text')\n    p.add_argument('-n', default='1')\n    a = p.parse_args(argv)\n    try:\n        n = int(a.n)\n    except ValueError:\n        n = 0\n    if n < 1:\n        print('error: bad count')\n        return 2\n    for _ in range(n):\n        print(a.text)\n    return 0",
         "def main(argv):\n    import argparse\n    p = argparse.ArgumentParser(prog='repeat')\n    p.add_argument('text')\n    p.add_argument('-n', type=int, default=1)\n    a = p.parse_args(argv)\n    for _ in range(a.n):\n        print(a.text)\n    return 0",
         [(["hi", "-n", "2"], 0, "hi\nhi\n"), (["x"], 0, "x\n"), (["x", "-n", "0"], 2, "error: bad count\n")]),
    _cli("cli_wc", "`wc [-l] [-w] [-c] TEXT...` counts lines, words and characters of the TEXT arguments joined by newlines. Print the selected counts (all three when none is selected) separated by spaces, in the order lines, words, characters.",
         "def main(argv):\n    flags = [a for a in argv if a in ('-l', '-w', '-c')]\n    text = '\\n'.join(a for a in argv if a not in ('-l', '-w', '-c'))\n    counts = {'-l': len(text.splitlines()), '-w': len(text.split()), '-c': len(text)}\n    chosen = [f for f in ('-l', '-w', '-c') if f in flags] or ['-l', '-w', '-c']\n    print(' '.join(str(counts[f]) for f in chosen))\n    return 0",
         "def main(argv):\n    flags = [a for a in argv if a in ('-l', '-w', '-c')]\n    text = '\\n'.join(a for a in argv if a not in ('-l', '-w', '-c'))\n    counts = {'-l': len(text.splitlines()), '-w': len(text.split()), '-c': len(text)}\n    chosen = flags or ['-l', '-w', '-c']\n    print(' '.join(str(counts[f]) for f in chosen))\n    return 0",
         [(["a b", "c"], 0, "2 3 5\n"), (["-c", "-l", "hello"], 0, "1 5\n"), (["-w", "x y z"], 0, "3\n")]),
    _cli("cli_calc", "`calc A OP B` with integers A and B and OP one of + - x / prints the result (integer division for /). Division by zero prints 'error: division by zero' and returns 1; a wrong number of arguments or unknown OP prints 'usage: calc A OP B' and returns 2.",
         "def main(argv):\n    if len(argv) != 3 or argv[1] not in '+-x/' or len(argv[1]) != 1:\n        print('usage: calc A OP B')\n        return 2\n    a, op, b = int(argv[0]), argv[1], int(argv[2])\n    if op == '/' and b == 0:\n        print('error: division by zero')\n        return 1\n    print({'+': a + b, '-': a - b, 'x': a * b, '/': a // b if b else 0}[op])\n    return 0",
         "def main(argv):\n    a, op, b = int(argv[0]), argv[1], int(argv[2])\n    if op == '/' and b == 0:\n        print('error: division by zero')\n        return 1\n    print({'+': a + b, '-': a - b, 'x': a * b, '/': a // b if b else 0}[op])\n    return 0",
         [(["6", "x", "7"], 0, "42\n"), (["7", "/", "2"], 0, "3\n"), (["1", "/", "0"], 1, "error: division by zero\n"), (["1", "+"], 2, "usage: calc A OP B\n")]),
    _cli("cli_flags_kv", "`config [--set KEY=VALUE]...` prints the settings given with --set as 'KEY=VALUE' lines sorted by key (a later --set of the same key wins). A --set value without '=' prints 'error: expected KEY=VALUE' and returns 2.",
         "def main(argv):\n    settings, it = {}, iter(argv)\n    for a in it:\n        if a == '--set':\n            kv = next(it, '')\n            if '=' not in kv:\n                print('error: expected KEY=VALUE')\n                return 2\n            k, v = kv.split('=', 1)\n            settings[k] = v\n    for k in sorted(settings):\n        print(f'{k}={settings[k]}')\n    return 0",
         "def main(argv):\n    settings = {}\n    for i, a in enumerate(argv):\n        if a == '--set':\n            k, v = argv[i + 1].split('=', 1)\n            settings.setdefault(k, v)\n    for k in sorted(settings):\n        print(f'{k}={settings[k]}')\n    return 0",
         [(["--set", "b=2", "--set", "a=1", "--set", "b=3"], 0, "a=1\nb=3\n"), (["--set", "oops"], 2, "error: expected KEY=VALUE\n"), ([], 0, "")]),
    _cli("cli_head", "`head [-n N] LINE...` prints the first N (default 3) LINE arguments, one per line. `-n` may come anywhere; N must be a non-negative integer, else print 'error: bad -n' and return 2.",
         "def main(argv):\n    n, lines, i = 3, [], 0\n    while i < len(argv):\n        if argv[i] == '-n':\n            if i + 1 >= len(argv) or not argv[i + 1].isdigit():\n                print('error: bad -n')\n                return 2\n            n = int(argv[i + 1]); i += 2\n        else:\n            lines.append(argv[i]); i += 1\n    for line in lines[:n]:\n        print(line)\n    return 0",
         "def main(argv):\n    n = 3\n    if argv[:1] == ['-n']:\n        n = int(argv[1]); argv = argv[2:]\n    for line in argv[:n]:\n        print(line)\n    return 0",
         [(["a", "b", "c", "d"], 0, "a\nb\nc\n"), (["a", "-n", "1", "b"], 0, "a\n"), (["-n", "x"], 2, "error: bad -n\n")]),
    _cli("cli_version_flag", "`tool [--version | -V] [--verbose] CMD` prints 'tool 1.2.3' and returns 0 when --version or -V is anywhere; otherwise prints 'running CMD' (preceded by a line 'verbose on' with --verbose) and returns 0; with no CMD prints 'error: missing command' and returns 2.",
         "def main(argv):\n    if '--version' in argv or '-V' in argv:\n        print('tool 1.2.3')\n        return 0\n    cmds = [a for a in argv if not a.startswith('-')]\n    if not cmds:\n        print('error: missing command')\n        return 2\n    if '--verbose' in argv:\n        print('verbose on')\n    print(f'running {cmds[0]}')\n    return 0",
         "def main(argv):\n    if argv and argv[0] in ('--version', '-V'):\n        print('tool 1.2.3')\n        return 0\n    cmds = [a for a in argv if not a.startswith('-')]\n    if not cmds:\n        print('error: missing command')\n        return 2\n    if '--verbose' in argv:\n        print('verbose on')\n    print(f'running {cmds[0]}')\n    return 0",
         [(["build", "-V"], 0, "tool 1.2.3\n"), (["--verbose", "test"], 0, "verbose on\nrunning test\n"), ([], 2, "error: missing command\n")]),
    _cli("cli_sort_lines", "`sort [-r] [-u] ITEM...` prints the ITEM arguments sorted (reverse with -r, duplicates removed with -u), one per line.",
         "def main(argv):\n    items = [a for a in argv if a not in ('-r', '-u')]\n    if '-u' in argv:\n        items = set(items)\n    for x in sorted(items, reverse='-r' in argv):\n        print(x)\n    return 0",
         "def main(argv):\n    items = [a for a in argv if a not in ('-r', '-u')]\n    if '-u' in argv:\n        items = set(items)\n    for x in sorted(items):\n        print(x)\n    return 0",
         [(["b", "a", "b"], 0, "a\nb\nb\n"), (["-r", "-u", "b", "a", "b"], 0, "b\na\n")]),
    _cli("cli_todo_subcommands", "`todo add TEXT...` prints 'added: TEXT' (the words joined by spaces); `todo list` prints 'no items'; any other or missing subcommand prints 'unknown command' and returns 2. Use argparse subparsers or plain checks.",
         "def main(argv):\n    if argv[:1] == ['add'] and len(argv) > 1:\n        print('added: ' + ' '.join(argv[1:]))\n        return 0\n    if argv == ['list']:\n        print('no items')\n        return 0\n    print('unknown command')\n    return 2",
         "def main(argv):\n    if argv[:1] == ['add']:\n        print('added: ' + argv[1])\n        return 0\n    if argv[:1] == ['list']:\n        print('no items')\n        return 0\n    print('unknown command')\n    return 2",
         [(["add", "buy", "milk"], 0, "added: buy milk\n"), (["list"], 0, "no items\n"), (["remove"], 2, "unknown command\n"), ([], 2, "unknown command\n")]),
    _cli("cli_env_style", "`run [-e NAME=VALUE]... [--] CMD...` prints each -e pair as 'NAME=VALUE' in the given order and then 'cmd: ' followed by the command words; everything after '--' belongs to the command even if it starts with '-e'.",
         "def main(argv):\n    env, cmd, i = [], [], 0\n    while i < len(argv):\n        if argv[i] == '--':\n            cmd += argv[i + 1:]\n            break\n        if argv[i] == '-e' and i + 1 < len(argv):\n            env.append(argv[i + 1]); i += 2\n        else:\n            cmd.append(argv[i]); i += 1\n    for e in env:\n        print(e)\n    print('cmd: ' + ' '.join(cmd))\n    return 0",
         "def main(argv):\n    env, cmd, i = [], [], 0\n    while i < len(argv):\n        if argv[i] == '-e' and i + 1 < len(argv):\n            env.append(argv[i + 1]); i += 2\n        elif argv[i] == '--':\n            i += 1\n        else:\n            cmd.append(argv[i]); i += 1\n    for e in env:\n        print(e)\n    print('cmd: ' + ' '.join(cmd))\n    return 0",
         [(["-e", "A=1", "ls", "-l"], 0, "A=1\ncmd: ls -l\n"), (["--", "grep", "-e", "x"], 0, "cmd: grep -e x\n")]),
    _cli("cli_range_args", "`seq [FIRST] LAST` prints the integers from FIRST (default 1) to LAST inclusive, one per line; with no or more than two arguments print 'usage: seq [FIRST] LAST' and return 2.",
         "def main(argv):\n    if not 1 <= len(argv) <= 2:\n        print('usage: seq [FIRST] LAST')\n        return 2\n    first, last = (1, int(argv[0])) if len(argv) == 1 else (int(argv[0]), int(argv[1]))\n    for i in range(first, last + 1):\n        print(i)\n    return 0",
         "def main(argv):\n    if not argv:\n        print('usage: seq [FIRST] LAST')\n        return 2\n    first, last = (1, int(argv[0])) if len(argv) == 1 else (int(argv[0]), int(argv[1]))\n    for i in range(first, last):\n        print(i)\n    return 0",
         [(["3"], 0, "1\n2\n3\n"), (["5", "6"], 0, "5\n6\n"), (["1", "2", "3"], 2, "usage: seq [FIRST] LAST\n")]),
    _cli("cli_bool_flags", "`show [--no-color] [--json]` prints the effective settings as 'color=on|off json=on|off'; colour is on by default and json off. An unknown option prints 'error: unknown option X' and returns 2.",
         "def main(argv):\n    known = {'--no-color', '--json'}\n    for a in argv:\n        if a not in known:\n            print(f'error: unknown option {a}')\n            return 2\n    print(f\"color={'off' if '--no-color' in argv else 'on'} json={'on' if '--json' in argv else 'off'}\")\n    return 0",
         "def main(argv):\n    print(f\"color={'off' if '--no-color' in argv else 'on'} json={'on' if '--json' in argv else 'off'}\")\n    return 0",
         [([], 0, "color=on json=off\n"), (["--json", "--no-color"], 0, "color=off json=on\n"), (["--jsn"], 2, "error: unknown option --jsn\n")]),
    _cli("cli_convert_units", "`convert VALUE FROM TO` converts a length between the units m, cm, km, in and ft (1 in = 0.0254 m, 1 ft = 0.3048 m) and prints the result with 4 decimals followed by a space and TO. An unknown unit prints 'error: unknown unit U' and returns 1.",
         "def main(argv):\n    f = {'m': 1, 'cm': 0.01, 'km': 1000, 'in': 0.0254, 'ft': 0.3048}\n    value, a, b = float(argv[0]), argv[1], argv[2]\n    for u in (a, b):\n        if u not in f:\n            print(f'error: unknown unit {u}')\n            return 1\n    print(f'{value * f[a] / f[b]:.4f} {b}')\n    return 0",
         "def main(argv):\n    f = {'m': 1, 'cm': 0.01, 'km': 1000, 'in': 0.0254, 'ft': 0.3048}\n    value, a, b = float(argv[0]), argv[1], argv[2]\n    if a not in f or b not in f:\n        print(f'error: unknown unit {a}')\n        return 1\n    print(f'{value * f[b] / f[a]:.4f} {b}')\n    return 0",
         [(["1", "ft", "in"], 0, "12.0000 in\n"), (["2.5", "km", "m"], 0, "2500.0000 m\n"), (["1", "m", "yd"], 1, "error: unknown unit yd\n")]),
    _cli("cli_grep", "`grep [-i] [-v] PATTERN LINE...` prints the LINE arguments that contain the substring PATTERN (case-insensitive with -i; the lines that do NOT contain it with -v). Returns 0 if anything was printed, else 1.",
         "def main(argv):\n    flags = {a for a in argv if a in ('-i', '-v')}\n    rest = [a for a in argv if a not in ('-i', '-v')]\n    pattern, lines = rest[0], rest[1:]\n    norm = (lambda s: s.lower()) if '-i' in flags else (lambda s: s)\n    hits = [l for l in lines if (norm(pattern) in norm(l)) != ('-v' in flags)]\n    for l in hits:\n        print(l)\n    return 0 if hits else 1",
         "def main(argv):\n    flags = {a for a in argv if a in ('-i', '-v')}\n    rest = [a for a in argv if a not in ('-i', '-v')]\n    pattern, lines = rest[0], rest[1:]\n    hits = [l for l in lines if (pattern.lower() in l.lower()) != ('-v' in flags)]\n    for l in hits:\n        print(l)\n    return 0",
         [(["-i", "ERR", "an error", "ok", "Err!"], 0, "an error\nErr!\n"), (["ERR", "an error"], 1, ""), (["-v", "x", "ax", "b"], 0, "b\n")]),
]
