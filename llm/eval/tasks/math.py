"""Small numeric tasks."""

from mgpt.llm.eval.tasks import T

TASKS = [
    T("gcd_list", "def gcd_all(numbers: list[int]) -> int",
      "Return the greatest common divisor of all the (non-negative) numbers; 0 for an empty list.",
      "import math\n\ndef gcd_all(numbers):\n    g = 0\n    for n in numbers:\n        g = math.gcd(g, n)\n    return g",
      "def gcd_all(numbers):\n    return min(numbers) if numbers else 0",
      cases=[("gcd_all([12, 18, 24])", "6"), ("gcd_all([])", "0"), ("gcd_all([4, 6])", "2")]),
    T("is_prime", "def is_prime(n: int) -> bool",
      "Return True if `n` is a prime number (n may be any integer).",
      "def is_prime(n):\n    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n        if n % i == 0:\n            return False\n        i += 1\n    return True",
      "def is_prime(n):\n    if n < 2:\n        return False\n    i = 2\n    while i * i < n:\n        if n % i == 0:\n            return False\n        i += 1\n    return True",
      cases=[("is_prime(2)", "True"), ("is_prime(9)", "False"), ("is_prime(25)", "False"), ("is_prime(97)", "True"), ("is_prime(-7)", "False")]),
    T("primes_below", "def primes_below(n: int) -> list[int]",
      "Return every prime smaller than `n`, ascending (a sieve of Eratosthenes is fine).",
      "def primes_below(n):\n    if n < 3:\n        return []\n    sieve = [True] * n\n    sieve[0] = sieve[1] = False\n    for i in range(2, int(n ** 0.5) + 1):\n        if sieve[i]:\n            sieve[i * i::i] = [False] * len(sieve[i * i::i])\n    return [i for i, p in enumerate(sieve) if p]",
      "def primes_below(n):\n    return [k for k in range(2, n) if all(k % d for d in range(2, int(k ** 0.5)))]",
      cases=[("primes_below(20)", "[2, 3, 5, 7, 11, 13, 17, 19]"), ("primes_below(2)", "[]"), ("primes_below(3)", "[2]")]),
    T("digit_sum", "def digit_sum(n: int) -> int",
      "Return the sum of the decimal digits of the integer `n` (the sign is ignored).",
      "def digit_sum(n):\n    return sum(int(d) for d in str(abs(n)))",
      "def digit_sum(n):\n    return sum(int(d) for d in str(n) if d != '0')",
      cases=[("digit_sum(1234)", "10"), ("digit_sum(-509)", "14"), ("digit_sum(0)", "0")]),
    T("factorial_trailing_zeros", "def trailing_zeros(n: int) -> int",
      "Return how many zeros n! ends with, for n >= 0, without computing n!.",
      "def trailing_zeros(n):\n    count, p = 0, 5\n    while p <= n:\n        count += n // p\n        p *= 5\n    return count",
      "def trailing_zeros(n):\n    return n // 5",
      cases=[("trailing_zeros(5)", "1"), ("trailing_zeros(25)", "6"), ("trailing_zeros(100)", "24"), ("trailing_zeros(0)", "0")]),
    T("to_base", "def to_base(n: int, base: int) -> str",
      "Write the integer `n` in `base` (2 to 36) using digits 0-9 then lower-case a-z, with a leading '-' for negatives. Raise ValueError for a base outside 2-36.",
      """
      DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz'

      def to_base(n, base):
          if not 2 <= base <= 36:
              raise ValueError('base must be 2-36')
          if n == 0:
              return '0'
          sign, n, out = '-' if n < 0 else '', abs(n), ''
          while n:
              n, r = divmod(n, base)
              out = DIGITS[r] + out
          return sign + out
      """,
      """
      DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz'

      def to_base(n, base):
          if not 2 <= base <= 36:
              raise ValueError('base must be 2-36')
          out, n = '', abs(n)
          while n:
              n, r = divmod(n, base)
              out += DIGITS[r]
          return out or '0'
      """,
      cases=[("to_base(255, 16)", "'ff'"), ("to_base(10, 2)", "'1010'"), ("to_base(-35, 36)", "'-z'"), ("to_base(0, 7)", "'0'")],
      raises=[("to_base(5, 1)", "ValueError")]),
    T("roman_numeral", "def to_roman(n: int) -> str",
      "Write 1 <= n <= 3999 as a Roman numeral with subtractive forms (IV, IX, XL, XC, CD, CM). Raise ValueError outside that range.",
      """
      VALUES = [(1000, 'M'), (900, 'CM'), (500, 'D'), (400, 'CD'), (100, 'C'), (90, 'XC'),
                (50, 'L'), (40, 'XL'), (10, 'X'), (9, 'IX'), (5, 'V'), (4, 'IV'), (1, 'I')]

      def to_roman(n):
          if not 1 <= n <= 3999:
              raise ValueError('out of range')
          out = ''
          for v, s in VALUES:
              while n >= v:
                  out += s
                  n -= v
          return out
      """,
      """
      VALUES = [(1000, 'M'), (500, 'D'), (100, 'C'), (50, 'L'), (10, 'X'), (5, 'V'), (1, 'I')]

      def to_roman(n):
          if not 1 <= n <= 3999:
              raise ValueError('out of range')
          out = ''
          for v, s in VALUES:
              while n >= v:
                  out += s
                  n -= v
          return out
      """,
      cases=[("to_roman(1994)", "'MCMXCIV'"), ("to_roman(3)", "'III'"), ("to_roman(2024)", "'MMXXIV'")],
      raises=[("to_roman(0)", "ValueError")]),
    T("mean_median_mode", "def stats(values: list[float]) -> tuple[float, float, float]",
      "Return (mean, median, mode) of a non-empty list; the median of an even-length list is the mean of the two middle values; the mode is the most frequent value, the smallest on a tie.",
      "from collections import Counter\n\ndef stats(values):\n    s = sorted(values)\n    n = len(s)\n    median = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2\n    c = Counter(s)\n    top = max(c.values())\n    return (sum(s) / n, median, min(v for v in c if c[v] == top))",
      "from collections import Counter\n\ndef stats(values):\n    s = sorted(values)\n    n = len(s)\n    median = s[n // 2]\n    return (sum(s) / n, median, Counter(values).most_common(1)[0][0])",
      cases=[("stats([3, 1, 2, 2])", "(2.0, 2.0, 2)"), ("stats([4, 1, 3, 1, 4, 5])", "(3.0, 3.5, 1)")]),
    T("fibonacci_iter", "def fibonacci(n: int) -> list[int]",
      "Return the first `n` Fibonacci numbers starting 0, 1 (an empty list for n <= 0).",
      "def fibonacci(n):\n    out, a, b = [], 0, 1\n    for _ in range(max(n, 0)):\n        out.append(a)\n        a, b = b, a + b\n    return out",
      "def fibonacci(n):\n    out, a, b = [], 1, 1\n    for _ in range(max(n, 0)):\n        out.append(a)\n        a, b = b, a + b\n    return out",
      cases=[("fibonacci(7)", "[0, 1, 1, 2, 3, 5, 8]"), ("fibonacci(0)", "[]"), ("fibonacci(1)", "[0]")]),
    T("round_half_up", "def round_half_up(x: float, digits: int = 0) -> float",
      "Round `x` to `digits` decimals with halves rounded away from zero (2.5 -> 3, -2.5 -> -3, 0.125 at 2 digits -> 0.13), unlike Python's banker's rounding. Use decimal.Decimal on str(x).",
      "from decimal import Decimal, ROUND_HALF_UP\n\ndef round_half_up(x, digits=0):\n    q = Decimal(1).scaleb(-digits)\n    return float(Decimal(str(x)).quantize(q, rounding=ROUND_HALF_UP))",
      "def round_half_up(x, digits=0):\n    return round(x, digits)",
      cases=[("round_half_up(2.5)", "3.0"), ("round_half_up(-2.5)", "-3.0"), ("round_half_up(0.125, 2)", "0.13"), ("round_half_up(1.234, 1)", "1.2")]),
    T("lcm_range", "def lcm_upto(n: int) -> int",
      "Return the smallest positive number divisible by every integer from 1 to n (1 for n <= 1).",
      "import math\n\ndef lcm_upto(n):\n    out = 1\n    for k in range(2, n + 1):\n        out = out * k // math.gcd(out, k)\n    return out",
      "import math\n\ndef lcm_upto(n):\n    return math.prod(range(1, n + 1)) if n > 1 else 1",
      cases=[("lcm_upto(10)", "2520"), ("lcm_upto(1)", "1"), ("lcm_upto(3)", "6")]),
    T("is_perfect_square", "def is_perfect_square(n: int) -> bool",
      "Return True if `n` is the square of an integer (negative numbers are not), exactly even for very large n (use math.isqrt).",
      "import math\n\ndef is_perfect_square(n):\n    return n >= 0 and math.isqrt(n) ** 2 == n",
      "def is_perfect_square(n):\n    return n >= 0 and int(n ** 0.5) ** 2 == n",
      cases=[("is_perfect_square(16)", "True"), ("is_perfect_square(15)", "False"), ("is_perfect_square(-4)", "False"),
             ("is_perfect_square((10**20 + 1) ** 2)", "True")]),
    T("collatz_steps", "def collatz_steps(n: int) -> int",
      "Return how many Collatz steps (n -> n/2 if even, else 3n+1) it takes a positive `n` to reach 1. Raise ValueError for n < 1.",
      "def collatz_steps(n):\n    if n < 1:\n        raise ValueError('n must be positive')\n    steps = 0\n    while n != 1:\n        n = n // 2 if n % 2 == 0 else 3 * n + 1\n        steps += 1\n    return steps",
      "def collatz_steps(n):\n    if n < 1:\n        raise ValueError('n must be positive')\n    steps = 1\n    while n != 1:\n        n = n // 2 if n % 2 == 0 else 3 * n + 1\n        steps += 1\n    return steps",
      cases=[("collatz_steps(1)", "0"), ("collatz_steps(6)", "8"), ("collatz_steps(27)", "111")],
      raises=[("collatz_steps(0)", "ValueError")]),
    T("percent_change", "def percent_change(old: float, new: float) -> float",
      "Return the change from `old` to `new` in percent of |old|, rounded to 2 decimals (a drop is negative). Raise ValueError when old is 0.",
      "def percent_change(old, new):\n    if old == 0:\n        raise ValueError('old value is zero')\n    return round((new - old) / abs(old) * 100, 2)",
      "def percent_change(old, new):\n    if old == 0:\n        raise ValueError('old value is zero')\n    return round((new - old) / new * 100, 2)",
      cases=[("percent_change(50, 75)", "50.0"), ("percent_change(200, 150)", "-25.0"), ("percent_change(-10, -5)", "50.0")],
      raises=[("percent_change(0, 5)", "ValueError")]),
    T("binomial", "def binomial(n: int, k: int) -> int",
      "Return the binomial coefficient C(n, k) for integers n >= 0, with 0 when k < 0 or k > n. Do not use math.comb.",
      "def binomial(n, k):\n    if k < 0 or k > n:\n        return 0\n    k = min(k, n - k)\n    out = 1\n    for i in range(1, k + 1):\n        out = out * (n - k + i) // i\n    return out",
      "def binomial(n, k):\n    if k < 0 or k > n:\n        return 0\n    out = 1\n    for i in range(1, k + 1):\n        out = out * (n - i) // i\n    return out",
      cases=[("binomial(5, 2)", "10"), ("binomial(10, 0)", "1"), ("binomial(3, 5)", "0"), ("binomial(52, 5)", "2598960")]),
]
