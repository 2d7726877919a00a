"""Parsing small text formats."""

from mgpt.llm.eval.tasks import T

TASKS = [
    T("parse_key_values", "def parse_key_values(text: str) -> dict[str, str]",
      "Parse lines of `key=value` into a dict. Whitespace around keys and values is stripped; blank lines and lines starting with '#' are skipped; a value may itself contain '='. Raise ValueError naming the line number (1-based) for a line with no '='.",
      """
      def parse_key_values(text):
          out = {}
          for n, line in enumerate(text.splitlines(), 1):
              s = line.strip()
              if not s or s.startswith('#'):
                  continue
              if '=' not in s:
                  raise ValueError(f'line {n}: expected key=value')
              k, v = s.split('=', 1)
              out[k.strip()] = v.strip()
          return out
      """,
      """
      def parse_key_values(text):
          out = {}
          for n, line in enumerate(text.splitlines(), 1):
              s = line.strip()
              if not s or s.startswith('#'):
                  continue
              if '=' not in s:
                  raise ValueError(f'line {n}: expected key=value')
              k, v = s.split('=')[:2]
              out[k.strip()] = v.strip()
          return out
      """,
      cases=[("parse_key_values('a = 1\\n# c\\n\\nb=x=y')", "{'a': '1', 'b': 'x=y'}"), ("parse_key_values('')", "{}")],
      raises=[("parse_key_values('a=1\\nbad')", "ValueError")],
      tests="""
      def test_error_names_line():
          with pytest.raises(ValueError, match='line 2'):
              parse_key_values('a=1\\nbad')
      """),
    T("parse_csv_line", "def parse_csv_line(line: str) -> list[str]",
      "Split one CSV line on commas. A field may be wrapped in double quotes, in which case it may contain commas, and a doubled quote inside it stands for one quote character. Do not use the csv module.",
      """
      def parse_csv_line(line):
          fields, cur, quoted, i = [], '', False, 0
          while i < len(line):
              c = line[i]
              if quoted:
                  if c == '"' and i + 1 < len(line) and line[i + 1] == '"':
                      cur += '"'; i += 1
                  elif c == '"':
                      quoted = False
                  else:
                      cur += c
              elif c == '"':
                  quoted = True
              elif c == ',':
                  fields.append(cur); cur = ''
              else:
                  cur += c
              i += 1
          fields.append(cur)
          return fields
      """,
      """
      def parse_csv_line(line):
          return [f.strip('"') for f in line.split(',')]
      """,
      cases=[("parse_csv_line('a,b,c')", "['a', 'b', 'c']"), ("parse_csv_line('1,\"x, y\",3')", "['1', 'x, y', '3']"),
             ("parse_csv_line('\"say \"\"hi\"\"\",2')", "['say \"hi\"', '2']"), ("parse_csv_line('a,,')", "['a', '', '']")]),
    T("parse_duration", "def parse_duration(text: str) -> int",
      "Parse a duration like '1h30m', '45s', '2h5s' or '10m' into a number of seconds. Units are h, m, s, each at most once, in that order. Raise ValueError for anything else (including the empty string).",
      """
      import re

      def parse_duration(text):
          m = re.fullmatch(r'(?:(\\d+)h)?(?:(\\d+)m)?(?:(\\d+)s)?', text)
          if not text or not m:
              raise ValueError(f'bad duration: {text!r}')
          h, mi, s = (int(g or 0) for g in m.groups())
          return h * 3600 + mi * 60 + s
      """,
      """
      import re

      def parse_duration(text):
          total = 0
          for n, unit in re.findall(r'(\\d+)([hms])', text):
              total += int(n) * {'h': 3600, 'm': 60, 's': 1}[unit]
          return total
      """,
      cases=[("parse_duration('1h30m')", "5400"), ("parse_duration('45s')", "45"), ("parse_duration('2h5s')", "7205")],
      raises=[("parse_duration('')", "ValueError"), ("parse_duration('5x')", "ValueError"), ("parse_duration('1m1h')", "ValueError")]),
    T("parse_version", "def parse_version(text: str) -> tuple[int, int, int]",
      "Parse a version 'MAJOR.MINOR.PATCH' (an optional leading 'v'; MINOR and PATCH may be missing and then count as 0) into a tuple of ints. Raise ValueError for anything else.",
      """
      import re

      def parse_version(text):
          m = re.fullmatch(r'v?(\\d+)(?:\\.(\\d+))?(?:\\.(\\d+))?', text.strip())
          if not m:
              raise ValueError(f'bad version: {text!r}')
          return tuple(int(g or 0) for g in m.groups())
      """,
      """
      def parse_version(text):
          parts = text.strip().lstrip('v').split('.')
          return tuple(int(p) for p in parts)
      """,
      cases=[("parse_version('1.2.3')", "(1, 2, 3)"), ("parse_version('v2')", "(2, 0, 0)"), ("parse_version('0.10')", "(0, 10, 0)")],
      raises=[("parse_version('1.x')", "ValueError"), ("parse_version('1.2.3.4')", "ValueError")]),
    T("parse_query_string", "def parse_query(query: str) -> dict[str, list[str]]",
      "Parse a URL query string such as 'a=1&b=2&a=3' into a dict of lists of values in order. '+' means a space and %XX escapes are decoded (urllib.parse.unquote_plus may be used). A part without '=' has the value ''. Empty parts are ignored.",
      """
      from urllib.parse import unquote_plus

      def parse_query(query):
          out = {}
          for part in query.split('&'):
              if not part:
                  continue
              k, _, v = part.partition('=')
              out.setdefault(unquote_plus(k), []).append(unquote_plus(v))
          return out
      """,
      """
      from urllib.parse import unquote_plus

      def parse_query(query):
          out = {}
          for part in query.split('&'):
              if not part:
                  continue
              k, _, v = part.partition('=')
              out[unquote_plus(k)] = [unquote_plus(v)]
          return out
      """,
      cases=[("parse_query('a=1&b=2&a=3')", "{'a': ['1', '3'], 'b': ['2']}"), ("parse_query('q=hello+world%21&flag')", "{'q': ['hello world!'], 'flag': ['']}"),
             ("parse_query('')", "{}")]),
    T("parse_ini", "def parse_ini(text: str) -> dict[str, dict[str, str]]",
      "Parse an INI-like text: '[section]' lines start a section, 'key = value' lines belong to the current section (keys before any section go to section ''), ';' or '#' lines are comments, blank lines are skipped. Values and keys are stripped. Do not use configparser.",
      """
      def parse_ini(text):
          out, section = {}, ''
          for line in text.splitlines():
              s = line.strip()
              if not s or s[0] in ';#':
                  continue
              if s.startswith('[') and s.endswith(']'):
                  section = s[1:-1].strip()
                  out.setdefault(section, {})
                  continue
              k, _, v = s.partition('=')
              out.setdefault(section, {})[k.strip()] = v.strip()
          return out
      """,
      """
      def parse_ini(text):
          out, section = {}, ''
          for line in text.splitlines():
              s = line.strip()
              if not s or s[0] in ';#':
                  continue
              if s.startswith('[') and s.endswith(']'):
                  section = s[1:-1].strip()
                  out[section] = {}
                  continue
              k, _, v = s.partition('=')
              out.setdefault(section, {})[k.strip()] = v.strip()
          return out
      """,
      cases=[("parse_ini('top=1\\n[db]\\nhost = x\\n; c\\nport=5')", "{'': {'top': '1'}, 'db': {'host': 'x', 'port': '5'}}"),
             ("parse_ini('[a]\\nx=1\\n[b]\\n[a]\\ny=2')", "{'a': {'x': '1', 'y': '2'}, 'b': {}}")]),
    T("parse_range_list", "def parse_ranges(text: str) -> list[int]",
      "Expand a page-range list like '1-3,7,10-12' into the sorted list of distinct numbers it names. Spaces around parts are allowed. Raise ValueError for a range whose start is above its end or for a part that is not a number or range.",
      """
      def parse_ranges(text):
          out = set()
          for part in text.split(','):
              part = part.strip()
              a, sep, b = part.partition('-')
              if not a.isdigit() or (sep and not b.isdigit()):
                  raise ValueError(f'bad part: {part!r}')
              lo, hi = int(a), int(b) if sep else int(a)
              if lo > hi:
                  raise ValueError(f'bad range: {part!r}')
              out.update(range(lo, hi + 1))
          return sorted(out)
      """,
      """
      def parse_ranges(text):
          out = []
          for part in text.split(','):
              part = part.strip()
              a, sep, b = part.partition('-')
              lo, hi = int(a), int(b) if sep else int(a)
              out.extend(range(lo, hi))
          return out
      """,
      cases=[("parse_ranges('1-3,7,10-12')", "[1, 2, 3, 7, 10, 11, 12]"), ("parse_ranges(' 5 , 2-3, 3')", "[2, 3, 5]")],
      raises=[("parse_ranges('5-2')", "ValueError"), ("parse_ranges('a')", "ValueError")]),
    T("parse_log_line", "def parse_log_line(line: str) -> dict[str, str]",
      "Parse a log line of the form '2024-01-31 12:00:05 [LEVEL] message text' into {'date': ..., 'time': ..., 'level': ..., 'message': ...}; the message may contain brackets and extra spaces, which are kept. Raise ValueError if the line does not have that form.",
      """
      import re

      def parse_log_line(line):
          m = re.fullmatch(r'(\\d{4}-\\d{2}-\\d{2}) (\\d{2}:\\d{2}:\\d{2}) \\[(\\w+)\\] (.*)', line)
          if not m:
              raise ValueError(f'not a log line: {line!r}')
          return dict(zip(('date', 'time', 'level', 'message'), m.groups()))
      """,
      """
      def parse_log_line(line):
          date, time, level, message = line.split(' ', 3)
          return {'date': date, 'time': time, 'level': level.strip('[]'), 'message': message.strip()}
      """,
      cases=[("parse_log_line('2024-01-31 12:00:05 [ERROR] disk [sda]  full')",
              "{'date': '2024-01-31', 'time': '12:00:05', 'level': 'ERROR', 'message': 'disk [sda]  full'}")],
      raises=[("parse_log_line('hello world how are you')", "ValueError")]),
    T("parse_money", "def parse_money(text: str) -> int",
      "Parse an amount of money such as '$1,234.50', '12', '-$3.05' or '0.5' into a whole number of cents. Commas are thousands separators; at most two decimals. Raise ValueError for anything else.",
      """
      import re

      def parse_money(text):
          m = re.fullmatch(r'(-)?\\$?(\\d{1,3}(?:,\\d{3})+|\\d+)(?:\\.(\\d{1,2}))?', text.strip())
          if not m:
              raise ValueError(f'bad amount: {text!r}')
          sign, whole, frac = m.groups()
          cents = int(whole.replace(',', '')) * 100 + int((frac or '0').ljust(2, '0'))
          return -cents if sign else cents
      """,
      """
      def parse_money(text):
          value = float(text.strip().replace('$', '').replace(',', ''))
          return int(value * 100)
      """,
      cases=[("parse_money('$1,234.50')", "123450"), ("parse_money('-$3.05')", "-305"), ("parse_money('0.5')", "50"), ("parse_money('12')", "1200"),
             ("parse_money('4.35')", "435")],
      raises=[("parse_money('1.234')", "ValueError"), ("parse_money('abc')", "ValueError")]),
    T("parse_hex_color", "def parse_hex_color(text: str) -> tuple[int, int, int]",
      "Parse a CSS hex colour '#RRGGBB' or the short form '#RGB' (each digit doubled) into an (r, g, b) tuple of ints, case-insensitively. Raise ValueError otherwise.",
      """
      import re

      def parse_hex_color(text):
          if not re.fullmatch(r'#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})', text):
              raise ValueError(f'bad colour: {text!r}')
          h = text[1:]
          if len(h) == 3:
              h = ''.join(c * 2 for c in h)
          return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))
      """,
      """
      def parse_hex_color(text):
          h = text.lstrip('#')
          if len(h) == 3:
              h = ''.join(c * 2 for c in h)
          return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))
      """,
      cases=[("parse_hex_color('#ff8000')", "(255, 128, 0)"), ("parse_hex_color('#0aF')", "(0, 170, 255)")],
      raises=[("parse_hex_color('ff8000')", "ValueError"), ("parse_hex_color('#12345')", "ValueError")]),
    T("tokenize_arith", "def tokenize(expr: str) -> list[str]",
      "Split an arithmetic expression into tokens: integers (runs of digits), identifiers (a letter or underscore, then letters, digits, underscores), and the single-character operators + - * / ( ). Whitespace separates tokens and is dropped. Raise ValueError on any other character.",
      """
      import re

      def tokenize(expr):
          tokens, pos = [], 0
          pattern = re.compile(r'\\s*(?:(\\d+)|([A-Za-z_]\\w*)|([-+*/()]))')
          expr = expr.rstrip()
          while pos < len(expr):
              m = pattern.match(expr, pos)
              if not m:
                  raise ValueError(f'unexpected character at {pos}')
              tokens.append(m.group(m.lastindex))
              pos = m.end()
          return tokens
      """,
      """
      def tokenize(expr):
          for op in '+-*/()':
              expr = expr.replace(op, f' {op} ')
          return expr.split()
      """,
      cases=[("tokenize('12 + x1*(y - 3)')", "['12', '+', 'x1', '*', '(', 'y', '-', '3', ')']"), ("tokenize('  ')", "[]"),
             ("tokenize('a_b/2')", "['a_b', '/', '2']")],
      raises=[("tokenize('2 $ 3')", "ValueError")]),
    T("parse_bool", "def parse_bool(text: str) -> bool",
      "Parse a yes/no setting: 'true', 'yes', 'on', '1' are True and 'false', 'no', 'off', '0' are False, case-insensitively and ignoring surrounding whitespace. Raise ValueError for anything else.",
      """
      def parse_bool(text):
          s = text.strip().lower()
          if s in ('true', 'yes', 'on', '1'):
              return True
          if s in ('false', 'no', 'off', '0'):
              return False
          raise ValueError(f'not a boolean: {text!r}')
      """,
      """
      def parse_bool(text):
          return text.strip().lower() in ('true', 'yes', 'on', '1')
      """,
      cases=[("parse_bool(' YES ')", "True"), ("parse_bool('off')", "False"), ("parse_bool('0')", "False")],
      raises=[("parse_bool('maybe')", "ValueError")]),
    T("parse_semver_compare", "def compare_versions(a: str, b: str) -> int",
      "Compare two dotted version strings numerically ('1.10' is newer than '1.9'; missing parts count as 0, so '1.0' equals '1'): return -1 if a is older, 0 if equal, 1 if newer.",
      """
      def compare_versions(a, b):
          pa, pb = [int(x) for x in a.split('.')], [int(x) for x in b.split('.')]
          n = max(len(pa), len(pb))
          pa += [0] * (n - len(pa)); pb += [0] * (n - len(pb))
          return (pa > pb) - (pa < pb)
      """,
      """
      def compare_versions(a, b):
          return (a > b) - (a < b)
      """,
      cases=[("compare_versions('1.10', '1.9')", "1"), ("compare_versions('1.0', '1')", "0"), ("compare_versions('0.9.1', '0.10')", "-1")]),
    T("parse_markdown_headings", "def headings(markdown: str) -> list[tuple[int, str]]",
      "Return (level, title) for every ATX heading line of a Markdown text: 1 to 6 '#' characters at the very start of a line, then at least one space, then the title (stripped, with any trailing '#' characters and spaces removed). Lines inside ``` fenced code blocks are not headings.",
      """
      import re

      def headings(markdown):
          out, fenced = [], False
          for line in markdown.splitlines():
              if line.startswith('```'):
                  fenced = not fenced
                  continue
              m = None if fenced else re.match(r'(#{1,6}) +(.*)', line)
              if m:
                  out.append((len(m.group(1)), m.group(2).rstrip('# ').strip()))
          return out
      """,
      """
      import re

      def headings(markdown):
          out = []
          for line in markdown.splitlines():
              m = re.match(r'(#{1,6}) +(.*)', line)
              if m:
                  out.append((len(m.group(1)), m.group(2).rstrip('# ').strip()))
          return out
      """,
      cases=[("headings('# Title\\ntext\\n## Sub ##\\n```\\n# not\\n```\\n#nospace')", "[(1, 'Title'), (2, 'Sub')]"), ("headings('')", "[]")]),
    T("parse_phone", "def normalize_phone(text: str) -> str",
      "Normalise a North American phone number written with any of spaces, dots, dashes and parentheses, and an optional leading '+1' or '1', to the form '(AAA) BBB-CCCC'. Raise ValueError if it does not have exactly 10 digits after removing the country code.",
      """
      import re

      def normalize_phone(text):
          digits = re.sub(r'[\\s().-]', '', text)
          if digits.startswith('+1'):
              digits = digits[2:]
          elif len(digits) == 11 and digits.startswith('1'):
              digits = digits[1:]
          if not re.fullmatch(r'\\d{10}', digits):
              raise ValueError(f'not a phone number: {text!r}')
          return f'({digits[:3]}) {digits[3:6]}-{digits[6:]}'
      """,
      """
      import re

      def normalize_phone(text):
          digits = re.sub(r'\\D', '', text)[-10:]
          return f'({digits[:3]}) {digits[3:6]}-{digits[6:]}'
      """,
      cases=[("normalize_phone('+1 (555) 123-4567')", "'(555) 123-4567'"), ("normalize_phone('555.123.4567')", "'(555) 123-4567'"),
             ("normalize_phone('1-555-123-4567')", "'(555) 123-4567'")],
      raises=[("normalize_phone('123-4567')", "ValueError"), ("normalize_phone('555-123-45x7')", "ValueError")]),
]
