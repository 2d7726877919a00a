"""List and sequence tasks."""

from mgpt.llm.eval.tasks import T

TASKS = [
    T("chunk_list", "def chunk_list(items: list, size: int) -> list[list]",
      "Split `items` into consecutive chunks of `size` items; the last chunk may be shorter. Raise ValueError if size < 1.",
      "def chunk_list(items, size):\n    if size < 1:\n        raise ValueError('size must be at least 1')\n    return [items[i:i + size] for i in range(0, len(items), size)]",
      "def chunk_list(items, size):\n    if size < 1:\n        raise ValueError('size must be at least 1')\n    return [items[i:i + size] for i in range(0, len(items) - size + 1, size)]",
      cases=[("chunk_list([1, 2, 3, 4, 5], 2)", "[[1, 2], [3, 4], [5]]"), ("chunk_list([], 3)", "[]"), ("chunk_list([1, 2], 5)", "[[1, 2]]")],
      raises=[("chunk_list([1], 0)", "ValueError")]),
    T("flatten_once", "def flatten_once(items: list) -> list",
      "Flatten one level of nesting: elements that are lists are replaced by their elements; other elements are kept. Deeper lists stay nested.",
      "def flatten_once(items):\n    out = []\n    for x in items:\n        if isinstance(x, list):\n            out.extend(x)\n        else:\n            out.append(x)\n    return out",
      "def flatten_once(items):\n    out = []\n    for x in items:\n        if isinstance(x, list):\n            out.extend(flatten_once(x))\n        else:\n            out.append(x)\n    return out",
      cases=[("flatten_once([1, [2, 3], 4])", "[1, 2, 3, 4]"), ("flatten_once([[1, [2]], [], 3])", "[1, [2], 3]")]),
    T("rotate_list", "def rotate_list(items: list, k: int) -> list",
      "Return a new list with `items` rotated right by `k` places (k may be negative or larger than the length; an empty list stays empty).",
      "def rotate_list(items, k):\n    if not items:\n        return []\n    k %= len(items)\n    return items[-k:] + items[:-k] if k else list(items)",
      "def rotate_list(items, k):\n    if not items:\n        return []\n    return items[-k:] + items[:-k]",
      cases=[("rotate_list([1, 2, 3, 4], 1)", "[4, 1, 2, 3]"), ("rotate_list([1, 2, 3], 4)", "[3, 1, 2]"),
             ("rotate_list([1, 2, 3], -1)", "[2, 3, 1]"), ("rotate_list([], 3)", "[]"), ("rotate_list([1, 2], 0)", "[1, 2]")]),
    T("dedupe_keep_order", "def dedupe(items: list) -> list",
      "Return the elements of `items` (hashable values) without repeats, keeping the first occurrence of each in its original order.",
      "def dedupe(items):\n    seen, out = set(), []\n    for x in items:\n        if x not in seen:\n            seen.add(x)\n            out.append(x)\n    return out",
      "def dedupe(items):\n    return list(set(items))",
      cases=[("dedupe([3, 1, 3, 2, 1])", "[3, 1, 2]"), ("dedupe(['b', 'a', 'b'])", "['b', 'a']"), ("dedupe([])", "[]")]),
    T("running_sum", "def running_sum(numbers: list[int]) -> list[int]",
      "Return the running totals: element i is the sum of numbers[0..i].",
      "def running_sum(numbers):\n    out, total = [], 0\n    for n in numbers:\n        total += n\n        out.append(total)\n    return out",
      "def running_sum(numbers):\n    out, total = [], 0\n    for n in numbers:\n        out.append(total)\n        total += n\n    return out",
      cases=[("running_sum([1, 2, 3])", "[1, 3, 6]"), ("running_sum([])", "[]"), ("running_sum([5, -5])", "[5, 0]")]),
    T("second_largest", "def second_largest(numbers: list[int]) -> int",
      "Return the second largest DISTINCT value in `numbers`; raise ValueError if there are fewer than two distinct values.",
      "def second_largest(numbers):\n    values = sorted(set(numbers))\n    if len(values) < 2:\n        raise ValueError('need two distinct values')\n    return values[-2]",
      "def second_largest(numbers):\n    values = sorted(numbers)\n    if len(values) < 2:\n        raise ValueError('need two distinct values')\n    return values[-2]",
      cases=[("second_largest([3, 1, 4, 4])", "3"), ("second_largest([-1, -2])", "-2")],
      raises=[("second_largest([7, 7])", "ValueError"), ("second_largest([])", "ValueError")]),
    T("merge_sorted", "def merge_sorted(a: list[int], b: list[int]) -> list[int]",
      "Merge two ascending lists into one ascending list (keeping duplicates), in linear time.",
      """
      def merge_sorted(a, b):
          i = j = 0
          out = []
          while i < len(a) and j < len(b):
              if a[i] <= b[j]:
                  out.append(a[i]); i += 1
              else:
                  out.append(b[j]); j += 1
          return out + a[i:] + b[j:]
      """,
      """
      def merge_sorted(a, b):
          i = j = 0
          out = []
          while i < len(a) and j < len(b):
              if a[i] <= b[j]:
                  out.append(a[i]); i += 1
              else:
                  out.append(b[j]); j += 1
          return out + a[i:]
      """,
      cases=[("merge_sorted([1, 3, 5], [2, 4, 6, 8])", "[1, 2, 3, 4, 5, 6, 8]"), ("merge_sorted([], [1])", "[1]"),
             ("merge_sorted([1, 1], [1])", "[1, 1, 1]")]),
    T("pairwise_diffs", "def pairwise_diffs(numbers: list[int]) -> list[int]",
      "Return the differences between consecutive elements: numbers[i+1] - numbers[i].",
      "def pairwise_diffs(numbers):\n    return [b - a for a, b in zip(numbers, numbers[1:])]",
      "def pairwise_diffs(numbers):\n    return [a - b for a, b in zip(numbers, numbers[1:])]",
      cases=[("pairwise_diffs([1, 4, 9])", "[3, 5]"), ("pairwise_diffs([2])", "[]"), ("pairwise_diffs([5, 3])", "[-2]")]),
    T("moving_average", "def moving_average(values: list[float], window: int) -> list[float]",
      "Return the mean of every full window of `window` consecutive values, in order (an empty list when there are fewer values than `window`). Raise ValueError if window < 1.",
      "def moving_average(values, window):\n    if window < 1:\n        raise ValueError('window must be positive')\n    return [sum(values[i:i + window]) / window for i in range(len(values) - window + 1)]",
      "def moving_average(values, window):\n    if window < 1:\n        raise ValueError('window must be positive')\n    return [sum(values[i:i + window]) / window for i in range(len(values) - window)]",
      cases=[("moving_average([1, 2, 3, 4], 2)", "[1.5, 2.5, 3.5]"), ("moving_average([1, 2], 3)", "[]"), ("moving_average([4], 1)", "[4.0]")],
      raises=[("moving_average([1], 0)", "ValueError")]),
    T("find_missing_number", "def find_missing(numbers: list[int]) -> int",
      "`numbers` holds every integer from 0 to n exactly once except one (n = len(numbers)); return the missing one.",
      "def find_missing(numbers):\n    n = len(numbers)\n    return n * (n + 1) // 2 - sum(numbers)",
      "def find_missing(numbers):\n    n = len(numbers)\n    return n * (n - 1) // 2 - sum(numbers)",
      cases=[("find_missing([3, 0, 1])", "2"), ("find_missing([0])", "1"), ("find_missing([1])", "0")]),
    T("interleave", "def interleave(a: list, b: list) -> list",
      "Return a[0], b[0], a[1], b[1], ...; when one list runs out, the rest of the other follows.",
      "def interleave(a, b):\n    out = []\n    for i in range(max(len(a), len(b))):\n        if i < len(a):\n            out.append(a[i])\n        if i < len(b):\n            out.append(b[i])\n    return out",
      "def interleave(a, b):\n    out = []\n    for x, y in zip(a, b):\n        out += [x, y]\n    return out",
      cases=[("interleave([1, 2, 3], ['a'])", "[1, 'a', 2, 3]"), ("interleave([], [1, 2])", "[1, 2]"), ("interleave([1], [2])", "[1, 2]")]),
    T("max_subarray_sum", "def max_subarray_sum(numbers: list[int]) -> int",
      "Return the largest sum of a non-empty contiguous slice of `numbers` (which is non-empty; all values may be negative).",
      "def max_subarray_sum(numbers):\n    best = cur = numbers[0]\n    for x in numbers[1:]:\n        cur = max(x, cur + x)\n        best = max(best, cur)\n    return best",
      "def max_subarray_sum(numbers):\n    best = cur = 0\n    for x in numbers:\n        cur = max(0, cur + x)\n        best = max(best, cur)\n    return best",
      cases=[("max_subarray_sum([-2, 1, -3, 4, -1, 2, 1, -5, 4])", "6"), ("max_subarray_sum([-3, -1, -2])", "-1"), ("max_subarray_sum([5])", "5")]),
    T("partition_by", "def partition_by(items: list, predicate) -> tuple[list, list]",
      "Return (matching, others): the elements for which predicate(element) is true and those for which it is false, each in original order.",
      "def partition_by(items, predicate):\n    yes, no = [], []\n    for x in items:\n        (yes if predicate(x) else no).append(x)\n    return yes, no",
      "def partition_by(items, predicate):\n    yes = [x for x in items if predicate(x) is True]\n    return yes, [x for x in items if x not in yes]",
      cases=[("partition_by([1, 2, 3, 4], lambda x: x % 2 == 0)", "([2, 4], [1, 3])"),
             ("partition_by([0, 1, 0, 2], bool)", "([1, 2], [0, 0])"), ("partition_by([], bool)", "([], [])"),
             ("partition_by([1, 2, 3], lambda x: x % 3)", "([1, 2], [3])")]),
    T("sliding_max", "def sliding_max(values: list[int], window: int) -> list[int]",
      "Return the maximum of every window of `window` consecutive values (len(values) - window + 1 results; [] if the window is longer than the list).",
      "def sliding_max(values, window):\n    return [max(values[i:i + window]) for i in range(len(values) - window + 1)] if window >= 1 else []",
      "def sliding_max(values, window):\n    return [max(values[i:i + window]) for i in range(0, len(values) - window + 1, window)]",
      cases=[("sliding_max([1, 3, -1, -3, 5, 3, 6, 7], 3)", "[3, 3, 5, 5, 6, 7]"), ("sliding_max([1, 2], 3)", "[]"), ("sliding_max([4, 2], 1)", "[4, 2]")]),
    T("two_sum_indices", "def two_sum(numbers: list[int], target: int) -> tuple[int, int] | None",
      "Return the indexes (i, j), i < j, of the first pair (smallest j, then smallest i) whose values add up to `target`; None if no pair does. An element cannot be paired with itself.",
      """
      def two_sum(numbers, target):
          for j in range(len(numbers)):
              for i in range(j):
                  if numbers[i] + numbers[j] == target:
                      return (i, j)
          return None
      """,
      """
      def two_sum(numbers, target):
          for j in range(len(numbers)):
              for i in range(j + 1):
                  if numbers[i] + numbers[j] == target:
                      return (i, j)
          return None
      """,
      cases=[("two_sum([2, 7, 11, 15], 9)", "(0, 1)"), ("two_sum([3, 2, 4], 6)", "(1, 2)"), ("two_sum([1, 2], 7)", "None")]),
    T("transpose_matrix", "def transpose(matrix: list[list]) -> list[list]",
      "Return the transpose of a rectangular matrix given as a list of rows ([] stays []).",
      "def transpose(matrix):\n    return [list(col) for col in zip(*matrix)]",
      "def transpose(matrix):\n    return [list(row) for row in matrix]",
      cases=[("transpose([[1, 2, 3], [4, 5, 6]])", "[[1, 4], [2, 5], [3, 6]]"), ("transpose([])", "[]"), ("transpose([[1]])", "[[1]]")]),
]
