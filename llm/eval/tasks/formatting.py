"""Text formatting."""

from mgpt.llm.eval.tasks import T

TASKS = [
    T("format_table", "def format_table(rows: list[list[str]]) -> str",
      "Format rows of strings as a text table: each column is left-aligned and padded to its widest cell, columns are separated by ' | ', trailing spaces are stripped from each line, and lines are joined with newlines.",
      "def format_table(rows):\n    if not rows:\n        return ''\n    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]\n    return '\\n'.join(' | '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)",
      "def format_table(rows):\n    if not rows:\n        return ''\n    widths = [len(c) for c in rows[0]]\n    return '\\n'.join(' | '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)",
      cases=[("format_table([['name', 'n'], ['apple', '10']])", "'name  | n\\napple | 10'"), ("format_table([])", "''")]),
    T("human_bytes", "def human_bytes(n: int) -> str",
      "Format a byte count with binary units: below 1024 as '<n> B', else divide by 1024 until below 1024 (or at TiB) and print one decimal with the unit KiB, MiB, GiB or TiB, e.g. '1.5 KiB'.",
      "def human_bytes(n):\n    if n < 1024:\n        return f'{n} B'\n    value = float(n)\n    for unit in ('KiB', 'MiB', 'GiB', 'TiB'):\n        value /= 1024\n        if value < 1024 or unit == 'TiB':\n            return f'{value:.1f} {unit}'",
      "def human_bytes(n):\n    if n < 1024:\n        return f'{n} B'\n    value = float(n)\n    for unit in ('KiB', 'MiB', 'GiB', 'TiB'):\n        value /= 1000\n        if value < 1000 or unit == 'TiB':\n            return f'{value:.1f} {unit}'",
      cases=[("human_bytes(512)", "'512 B'"), ("human_bytes(1536)", "'1.5 KiB'"), ("human_bytes(5 * 1024 ** 3)", "'5.0 GiB'")]),
    T("thousands", "def with_commas(n: int) -> str",
      "Format an integer with commas between groups of three digits ('-1,234,567'). Do not use format specifiers.",
      "def with_commas(n):\n    s = str(abs(n))\n    groups = []\n    while s:\n        groups.insert(0, s[-3:])\n        s = s[:-3]\n    return ('-' if n < 0 else '') + ','.join(groups)",
      "def with_commas(n):\n    s = str(n)\n    return ','.join(s[i:i + 3] for i in range(0, len(s), 3))",
      cases=[("with_commas(1234567)", "'1,234,567'"), ("with_commas(-1000)", "'-1,000'"), ("with_commas(12)", "'12'"), ("with_commas(0)", "'0'")]),
    T("ordinal", "def ordinal(n: int) -> str",
      "Return n with its English ordinal suffix: 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 102nd, 111th.",
      "def ordinal(n):\n    if 10 <= n % 100 <= 20:\n        suffix = 'th'\n    else:\n        suffix = {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')\n    return f'{n}{suffix}'",
      "def ordinal(n):\n    suffix = {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')\n    return f'{n}{suffix}'",
      cases=[("[ordinal(i) for i in (1, 2, 3, 4, 11, 12, 13, 21, 102, 111)]", "['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '102nd', '111th']")]),
    T("pluralize", "def pluralize(count: int, noun: str) -> str",
      "Return '<count> <noun>' with the noun made plural unless count is 1: nouns ending in s, x, z, ch or sh get 'es'; a consonant followed by 'y' becomes 'ies'; others get 's'.",
      """
      def pluralize(count, noun):
          if count == 1:
              return f'{count} {noun}'
          if noun.endswith(('s', 'x', 'z', 'ch', 'sh')):
              p = noun + 'es'
          elif noun.endswith('y') and len(noun) > 1 and noun[-2] not in 'aeiou':
              p = noun[:-1] + 'ies'
          else:
              p = noun + 's'
          return f'{count} {p}'
      """,
      """
      def pluralize(count, noun):
          if count == 1:
              return f'{count} {noun}'
          if noun.endswith(('s', 'x', 'z', 'ch', 'sh')):
              p = noun + 'es'
          elif noun.endswith('y'):
              p = noun[:-1] + 'ies'
          else:
              p = noun + 's'
          return f'{count} {p}'
      """,
      cases=[("pluralize(1, 'box')", "'1 box'"), ("pluralize(2, 'box')", "'2 boxes'"), ("pluralize(3, 'city')", "'3 cities'"),
             ("pluralize(0, 'day')", "'0 days'"), ("pluralize(2, 'church')", "'2 churches'")]),
    T("progress_bar", "def progress_bar(done: int, total: int, width: int = 10) -> str",
      "Draw a progress bar '[###-------] 30%': `width` cells, the number of '#' is floor(width * done / total), the rest '-', then a space and the integer percentage floor(100 * done / total). done is clamped to 0..total; total > 0.",
      "def progress_bar(done, total, width=10):\n    done = max(0, min(done, total))\n    filled = width * done // total\n    return '[' + '#' * filled + '-' * (width - filled) + f'] {100 * done // total}%'",
      "def progress_bar(done, total, width=10):\n    filled = round(width * done / total)\n    return '[' + '#' * filled + '-' * (width - filled) + f'] {round(100 * done / total)}%'",
      cases=[("progress_bar(3, 10)", "'[###-------] 30%'"), ("progress_bar(2, 3, 4)", "'[##--] 66%'"), ("progress_bar(12, 10)", "'[##########] 100%'")]),
    T("center_box", "def boxed(lines: list[str]) -> str",
      "Draw a box around `lines`: a top and bottom border '+' + '-' * (w + 2) + '+', and each line as '| ' + line.ljust(w) + ' |', where w is the longest line's length; joined with newlines.",
      "def boxed(lines):\n    w = max((len(l) for l in lines), default=0)\n    border = '+' + '-' * (w + 2) + '+'\n    return '\\n'.join([border] + ['| ' + l.ljust(w) + ' |' for l in lines] + [border])",
      "def boxed(lines):\n    w = max((len(l) for l in lines), default=0)\n    border = '+' + '-' * w + '+'\n    return '\\n'.join([border] + ['| ' + l.ljust(w) + ' |' for l in lines] + [border])",
      cases=[("boxed(['hi', 'there'])", "'+-------+\\n| hi    |\\n| there |\\n+-------+'")]),
    T("format_list_english", "def join_english(items: list[str]) -> str",
      "Join items as English with an Oxford comma: [] -> '', ['a'] -> 'a', ['a', 'b'] -> 'a and b', ['a', 'b', 'c'] -> 'a, b, and c'.",
      "def join_english(items):\n    if len(items) <= 2:\n        return ' and '.join(items)\n    return ', '.join(items[:-1]) + ', and ' + items[-1]",
      "def join_english(items):\n    if len(items) <= 1:\n        return ''.join(items)\n    return ', '.join(items[:-1]) + ', and ' + items[-1]",
      cases=[("join_english([])", "''"), ("join_english(['a'])", "'a'"), ("join_english(['a', 'b'])", "'a and b'"), ("join_english(['a', 'b', 'c'])", "'a, b, and c'")]),
    T("format_money", "def format_money(cents: int, symbol: str = '$') -> str",
      "Format an amount in cents as money: '$1,234.05', '-$0.50' (the minus goes before the symbol), with thousands separators.",
      "def format_money(cents, symbol='$'):\n    sign = '-' if cents < 0 else ''\n    whole, frac = divmod(abs(cents), 100)\n    return f'{sign}{symbol}{whole:,}.{frac:02d}'",
      "def format_money(cents, symbol='$'):\n    return f'{symbol}{cents / 100:,.2f}'",
      cases=[("format_money(123405)", "'$1,234.05'"), ("format_money(-50)", "'-$0.50'"), ("format_money(7, '€')", "'€0.07'")]),
    T("indent_block", "def indent(text: str, spaces: int = 4) -> str",
      "Indent every non-empty line of `text` by `spaces` spaces; empty lines (or lines of only whitespace) become empty. Keep the original line breaks, including a final newline if present.",
      "def indent(text, spaces=4):\n    pad = ' ' * spaces\n    return ''.join(pad + l if l.strip() else ('\\n' if l.endswith('\\n') else '') for l in text.splitlines(keepends=True))",
      "def indent(text, spaces=4):\n    pad = ' ' * spaces\n    return ''.join(pad + l for l in text.splitlines(keepends=True))",
      cases=[("indent('a\\n\\n  b\\n', 2)", "'  a\\n\\n    b\\n'"), ("indent('x')", "'    x'")]),
    T("truncate_text", "def truncate(text: str, limit: int) -> str",
      "Shorten `text` to at most `limit` characters: if it is longer, cut it and end it with '...' so that the result, dots included, is exactly `limit` characters long (limit >= 3).",
      "def truncate(text, limit):\n    return text if len(text) <= limit else text[:limit - 3] + '...'",
      "def truncate(text, limit):\n    return text if len(text) <= limit else text[:limit] + '...'",
      cases=[("truncate('hello world', 8)", "'hello...'"), ("truncate('short', 10)", "'short'"), ("truncate('abcdef', 6)", "'abcdef'")]),
    T("zero_pad_ids", "def pad_ids(ids: list[int]) -> list[str]",
      "Zero-pad every id to the width of the largest one: [7, 42, 130] -> ['007', '042', '130'].",
      "def pad_ids(ids):\n    w = max((len(str(i)) for i in ids), default=0)\n    return [str(i).zfill(w) for i in ids]",
      "def pad_ids(ids):\n    return [str(i).zfill(3) for i in ids]",
      cases=[("pad_ids([7, 42, 130])", "['007', '042', '130']"), ("pad_ids([5, 12345])", "['00005', '12345']"), ("pad_ids([])", "[]")]),
    T("format_elapsed", "def ago(seconds: int) -> str",
      "Describe an elapsed time in words: under 60 s 'just now'; under an hour '<m> minute(s) ago'; under a day '<h> hour(s) ago'; else '<d> day(s) ago', with whole units rounded down and the singular for 1 ('1 minute ago').",
      "def ago(seconds):\n    if seconds < 60:\n        return 'just now'\n    for size, unit in ((86400, 'day'), (3600, 'hour'), (60, 'minute')):\n        if seconds >= size:\n            n = seconds // size\n            return f\"{n} {unit}{'' if n == 1 else 's'} ago\"",
      "def ago(seconds):\n    if seconds < 60:\n        return 'just now'\n    for size, unit in ((86400, 'day'), (3600, 'hour'), (60, 'minute')):\n        if seconds >= size:\n            n = seconds // size\n            return f'{n} {unit}s ago'",
      cases=[("ago(5)", "'just now'"), ("ago(60)", "'1 minute ago'"), ("ago(7200)", "'2 hours ago'"), ("ago(90000)", "'1 day ago'")]),
    T("key_value_lines", "def format_settings(settings: dict[str, object]) -> str",
      "Format a dict as lines 'key: value' sorted by key, with the colons aligned: keys are left-justified to the longest key's length before ': '.",
      "def format_settings(settings):\n    w = max((len(k) for k in settings), default=0)\n    return '\\n'.join(f'{k.ljust(w)}: {settings[k]}' for k in sorted(settings))",
      "def format_settings(settings):\n    w = max((len(k) for k in settings), default=0)\n    return '\\n'.join(f'{k.ljust(w)}: {v}' for k, v in settings.items())",
      cases=[("format_settings({'port': 80, 'host': 'x', 'db_name': 'main'})", "'db_name: main\\nhost   : x\\nport   : 80'")]),
    T("markdown_link_list", "def md_links(links: dict[str, str]) -> str",
      "Render {title: url} as a Markdown bullet list '- [title](url)', one per line in insertion order; a ']' in a title is escaped as '\\]'.",
      "def md_links(links):\n    return '\\n'.join(f\"- [{t.replace(']', chr(92) + ']')}]({u})\" for t, u in links.items())",
      "def md_links(links):\n    return '\\n'.join(f'- [{t}]({u})' for t, u in links.items())",
      cases=[("md_links({'Home': '/', 'a]b': '/x'})", "'- [Home](/)\\n- [a\\\\]b](/x)'")]),
]
