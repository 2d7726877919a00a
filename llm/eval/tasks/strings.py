"""String manipulation tasks."""

from mgpt.llm.eval.tasks import T

TASKS = [
    T("reverse_words", "def reverse_words(text: str) -> str",
      "Return the words of `text` in reverse order joined by single spaces; runs of whitespace separate words and leading/trailing whitespace is dropped.",
      "def reverse_words(text):\n    return ' '.join(reversed(text.split()))",
      "def reverse_words(text):\n    return ' '.join(reversed(text.split(' ')))",
      cases=[("reverse_words('a b c')", "'c b a'"), ("reverse_words('  hello   big world ')", "'world big hello'"),
             ("reverse_words('')", "''")]),
    T("is_palindrome", "def is_palindrome(text: str) -> bool",
      "Return True if `text` reads the same backwards, ignoring case and every character that is not a letter or digit.",
      "def is_palindrome(text):\n    s = [c.lower() for c in text if c.isalnum()]\n    return s == s[::-1]",
      "def is_palindrome(text):\n    s = [c for c in text if c.isalnum()]\n    return s == s[::-1]",
      cases=[("is_palindrome('A man, a plan, a canal: Panama')", "True"), ("is_palindrome('abc')", "False"),
             ("is_palindrome('')", "True"), ("is_palindrome('No lemon, no melon')", "True")]),
    T("slugify", "def slugify(title: str) -> str",
      "Turn `title` into a URL slug: lower case, every run of characters that are not ASCII letters or digits becomes one hyphen, and no hyphen at either end.",
      """
      import re

      def slugify(title):
          return re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')
      """,
      """
      import re

      def slugify(title):
          return re.sub(r'[^a-z0-9]', '-', title.lower()).strip('-')
      """,
      cases=[("slugify('Hello, World!')", "'hello-world'"), ("slugify('  Python 3.12 release ')", "'python-3-12-release'"),
             ("slugify('---')", "''")]),
    T("caesar_shift", "def caesar_shift(text: str, shift: int) -> str",
      "Shift every ASCII letter of `text` by `shift` places in the alphabet, wrapping around and keeping its case; other characters are unchanged. `shift` may be negative or larger than 26.",
      """
      def caesar_shift(text, shift):
          out = []
          for c in text:
              if 'a' <= c <= 'z':
                  out.append(chr((ord(c) - 97 + shift) % 26 + 97))
              elif 'A' <= c <= 'Z':
                  out.append(chr((ord(c) - 65 + shift) % 26 + 65))
              else:
                  out.append(c)
          return ''.join(out)
      """,
      """
      def caesar_shift(text, shift):
          out = []
          for c in text:
              if c.isalpha():
                  out.append(chr((ord(c.lower()) - 97 + shift) % 26 + 97))
              else:
                  out.append(c)
          return ''.join(out)
      """,
      cases=[("caesar_shift('abc', 1)", "'bcd'"), ("caesar_shift('Hello, World', 3)", "'Khoor, Zruog'"),
             ("caesar_shift('xyz', 29)", "'abc'"), ("caesar_shift('Abc', -1)", "'Zab'")]),
    T("compress_runs", "def compress_runs(text: str) -> str",
      "Run-length encode `text`: each maximal run of the same character becomes the character followed by the run length (always written, even 1). compress_runs('aaab') == 'a3b1'.",
      """
      def compress_runs(text):
          out, i = [], 0
          while i < len(text):
              j = i
              while j < len(text) and text[j] == text[i]:
                  j += 1
              out.append(f'{text[i]}{j - i}')
              i = j
          return ''.join(out)
      """,
      """
      def compress_runs(text):
          from collections import Counter
          return ''.join(f'{c}{n}' for c, n in Counter(text).items())
      """,
      cases=[("compress_runs('aaab')", "'a3b1'"), ("compress_runs('abba')", "'a1b2a1'"), ("compress_runs('')", "''"),
             ("compress_runs('zzzzzzzzzzzz')", "'z12'")]),
    T("title_case", "def title_case(text: str, small_words: set[str] = frozenset({'a', 'an', 'the', 'of', 'and', 'in'})) -> str",
      "Capitalise the first letter of every space-separated word and lower-case the rest, except words in `small_words`, which stay lower case unless they are the first word.",
      """
      def title_case(text, small_words=frozenset({'a', 'an', 'the', 'of', 'and', 'in'})):
          words = text.split(' ')
          out = []
          for i, w in enumerate(words):
              lw = w.lower()
              out.append(lw if i > 0 and lw in small_words else lw[:1].upper() + lw[1:])
          return ' '.join(out)
      """,
      """
      def title_case(text, small_words=frozenset({'a', 'an', 'the', 'of', 'and', 'in'})):
          words = text.split(' ')
          out = []
          for w in words:
              lw = w.lower()
              out.append(lw if lw in small_words else lw[:1].upper() + lw[1:])
          return ' '.join(out)
      """,
      cases=[("title_case('the lord OF the rings')", "'The Lord of the Rings'"), ("title_case('war and peace')", "'War and Peace'"),
             ("title_case('a tale')", "'A Tale'")]),
    T("count_vowels", "def count_vowels(text: str) -> int",
      "Return how many vowels (a, e, i, o, u, in either case) `text` contains.",
      "def count_vowels(text):\n    return sum(1 for c in text.lower() if c in 'aeiou')",
      "def count_vowels(text):\n    return sum(1 for c in text if c in 'aeiou')",
      cases=[("count_vowels('Hello World')", "3"), ("count_vowels('AEIOU xyz')", "5"), ("count_vowels('')", "0")]),
    T("longest_common_prefix", "def longest_common_prefix(words: list[str]) -> str",
      "Return the longest string that every word in `words` starts with ('' for an empty list).",
      """
      def longest_common_prefix(words):
          if not words:
              return ''
          prefix = words[0]
          for w in words[1:]:
              while not w.startswith(prefix):
                  prefix = prefix[:-1]
          return prefix
      """,
      """
      def longest_common_prefix(words):
          if not words:
              return ''
          first, last = words[0], words[-1]
          i = 0
          while i < min(len(first), len(last)) and first[i] == last[i]:
              i += 1
          return first[:i]
      """,
      cases=[("longest_common_prefix(['flower', 'flow', 'flight'])", "'fl'"), ("longest_common_prefix(['abc', 'xbc', 'abd'])", "''"),
             ("longest_common_prefix([])", "''"), ("longest_common_prefix(['same'])", "'same'")]),
    T("camel_to_snake", "def camel_to_snake(name: str) -> str",
      "Convert a camelCase or PascalCase identifier to snake_case: an underscore goes before every upper-case letter that is not the first character, and everything is lower-cased. camel_to_snake('parseHttpRequest') == 'parse_http_request'.",
      "def camel_to_snake(name):\n    return ''.join(('_' + c.lower()) if c.isupper() and i else c.lower() for i, c in enumerate(name))",
      "def camel_to_snake(name):\n    return ''.join(('_' + c.lower()) if c.isupper() else c for c in name)",
      cases=[("camel_to_snake('parseHttpRequest')", "'parse_http_request'"), ("camel_to_snake('MyClass')", "'my_class'"),
             ("camel_to_snake('x')", "'x'")]),
    T("snake_to_camel", "def snake_to_camel(name: str) -> str",
      "Convert a snake_case identifier to lowerCamelCase: the first word stays lower case, each later word is capitalised, and empty parts from repeated underscores are dropped.",
      """
      def snake_to_camel(name):
          parts = [p for p in name.split('_') if p]
          if not parts:
              return ''
          return parts[0].lower() + ''.join(p.capitalize() for p in parts[1:])
      """,
      """
      def snake_to_camel(name):
          parts = name.split('_')
          return parts[0].lower() + ''.join(p.capitalize() for p in parts[1:])
      """,
      cases=[("snake_to_camel('parse_http_request')", "'parseHttpRequest'"), ("snake_to_camel('__private__name')", "'privateName'"),
             ("snake_to_camel('single')", "'single'")]),
    T("mask_email", "def mask_email(email: str) -> str",
      "Mask the local part of an e-mail address: keep its first and last character and replace the ones between with '***' (a local part of 1 or 2 characters becomes just '***'). The domain is unchanged. Raise ValueError if there is not exactly one '@'.",
      """
      def mask_email(email):
          if email.count('@') != 1:
              raise ValueError(f'not an e-mail address: {email!r}')
          local, domain = email.split('@')
          masked = '***' if len(local) <= 2 else local[0] + '***' + local[-1]
          return masked + '@' + domain
      """,
      """
      def mask_email(email):
          local, domain = email.split('@', 1)
          masked = local[0] + '***' + local[-1]
          return masked + '@' + domain
      """,
      cases=[("mask_email('john.doe@example.com')", "'j***e@example.com'"), ("mask_email('al@x.org')", "'***@x.org'")],
      raises=[("mask_email('a@b@c')", "ValueError"), ("mask_email('nobody')", "ValueError")]),
    T("wrap_text", "def wrap_text(text: str, width: int) -> list[str]",
      "Greedily wrap the words of `text` into lines of at most `width` characters (words joined by one space); a single word longer than `width` gets a line of its own, unbroken.",
      """
      def wrap_text(text, width):
          lines, cur = [], ''
          for w in text.split():
              if not cur:
                  cur = w
              elif len(cur) + 1 + len(w) <= width:
                  cur += ' ' + w
              else:
                  lines.append(cur)
                  cur = w
          if cur:
              lines.append(cur)
          return lines
      """,
      """
      def wrap_text(text, width):
          lines, cur = [], ''
          for w in text.split():
              if not cur:
                  cur = w
              elif len(cur) + len(w) <= width:
                  cur += ' ' + w
              else:
                  lines.append(cur)
                  cur = w
          if cur:
              lines.append(cur)
          return lines
      """,
      cases=[("wrap_text('the quick brown fox', 10)", "['the quick', 'brown fox']"), ("wrap_text('abc de', 5)", "['abc', 'de']"),
             ("wrap_text('', 5)", "[]"), ("wrap_text('tiny enormousword x', 4)", "['tiny', 'enormousword', 'x']")]),
    T("remove_duplicates_chars", "def remove_duplicate_chars(text: str) -> str",
      "Return `text` with only the first occurrence of each character kept, in order.",
      "def remove_duplicate_chars(text):\n    seen = set()\n    return ''.join(c for c in text if not (c in seen or seen.add(c)))",
      "def remove_duplicate_chars(text):\n    return ''.join(sorted(set(text)))",
      cases=[("remove_duplicate_chars('banana')", "'ban'"), ("remove_duplicate_chars('mississippi')", "'misp'"),
             ("remove_duplicate_chars('')", "''")]),
    T("is_anagram", "def is_anagram(a: str, b: str) -> bool",
      "Return True if `a` and `b` are anagrams of each other, ignoring case and spaces.",
      "def is_anagram(a, b):\n    norm = lambda s: sorted(s.replace(' ', '').lower())\n    return norm(a) == norm(b)",
      "def is_anagram(a, b):\n    norm = lambda s: set(s.replace(' ', '').lower())\n    return norm(a) == norm(b)",
      cases=[("is_anagram('Listen', 'Silent')", "True"), ("is_anagram('aab', 'abb')", "False"),
             ("is_anagram('Dormitory', 'dirty room')", "True")]),
    T("char_positions", "def char_positions(text: str, char: str) -> list[int]",
      "Return the indexes at which the single character `char` occurs in `text`, in increasing order.",
      "def char_positions(text, char):\n    return [i for i, c in enumerate(text) if c == char]",
      "def char_positions(text, char):\n    return [i + 1 for i, c in enumerate(text) if c == char]",
      cases=[("char_positions('banana', 'a')", "[1, 3, 5]"), ("char_positions('xyz', 'q')", "[]"), ("char_positions('aa', 'a')", "[0, 1]")]),
    T("initials", "def initials(full_name: str) -> str",
      "Return the upper-case initials of the words of `full_name`, each followed by a dot, with no spaces: initials('ada  king lovelace') == 'A.K.L.'.",
      "def initials(full_name):\n    return ''.join(w[0].upper() + '.' for w in full_name.split())",
      "def initials(full_name):\n    return ''.join(w[0].upper() + '.' for w in full_name.split(' '))",
      cases=[("initials('ada  king lovelace')", "'A.K.L.'"), ("initials('Guido van Rossum')", "'G.V.R.'"), ("initials('')", "''")]),
]
