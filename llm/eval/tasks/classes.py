"""Small classes."""

from mgpt.llm.eval.tasks import T

TASKS = [
    T("stack_class", "class Stack:\n    def push(self, item) -> None: ...\n    def pop(self): ...\n    def peek(self): ...\n    def __len__(self) -> int: ...",
      "A LIFO stack. pop and peek on an empty stack raise IndexError('empty stack').",
      "class Stack:\n    def __init__(self):\n        self._items = []\n    def push(self, item):\n        self._items.append(item)\n    def pop(self):\n        if not self._items:\n            raise IndexError('empty stack')\n        return self._items.pop()\n    def peek(self):\n        if not self._items:\n            raise IndexError('empty stack')\n        return self._items[-1]\n    def __len__(self):\n        return len(self._items)",
      "class Stack:\n    def __init__(self):\n        self._items = []\n    def push(self, item):\n        self._items.append(item)\n    def pop(self):\n        if not self._items:\n            raise IndexError('empty stack')\n        return self._items.pop(0)\n    def peek(self):\n        return self._items[-1]\n    def __len__(self):\n        return len(self._items)",
      tests="""
      def test_lifo():
          s = Stack()
          s.push(1); s.push(2)
          assert s.peek() == 2 and len(s) == 2
          assert s.pop() == 2 and s.pop() == 1 and len(s) == 0
          with pytest.raises(IndexError):
              s.pop()
      """),
    T("bank_account", "class Account:\n    def __init__(self, owner: str, balance: int = 0): ...\n    def deposit(self, amount: int) -> int: ...\n    def withdraw(self, amount: int) -> int: ...\n    balance: int",
      "A bank account in whole cents. deposit and withdraw return the new balance; a non-positive amount raises ValueError; a withdrawal larger than the balance raises ValueError and leaves the balance unchanged.",
      "class Account:\n    def __init__(self, owner, balance=0):\n        self.owner, self.balance = owner, balance\n    def deposit(self, amount):\n        if amount <= 0:\n            raise ValueError('amount must be positive')\n        self.balance += amount\n        return self.balance\n    def withdraw(self, amount):\n        if amount <= 0:\n            raise ValueError('amount must be positive')\n        if amount > self.balance:\n            raise ValueError('insufficient funds')\n        self.balance -= amount\n        return self.balance",
      "class Account:\n    def __init__(self, owner, balance=0):\n        self.owner, self.balance = owner, balance\n    def deposit(self, amount):\n        if amount <= 0:\n            raise ValueError('amount must be positive')\n        self.balance += amount\n        return self.balance\n    def withdraw(self, amount):\n        if amount <= 0:\n            raise ValueError('amount must be positive')\n        self.balance -= amount\n        if self.balance < 0:\n            raise ValueError('insufficient funds')\n        return self.balance",
      tests="""
      def test_account():
          a = Account('ann', 100)
          assert a.deposit(50) == 150 and a.withdraw(30) == 120
          with pytest.raises(ValueError):
              a.withdraw(500)
          assert a.balance == 120
          with pytest.raises(ValueError):
              a.deposit(0)
      """),
    T("vector2d", "class Vector:\n    def __init__(self, x: float, y: float): ...\n    # supports +, -, * (by a number), ==, abs() (length) and repr 'Vector(x, y)'",
      "An immutable 2-D vector with the operators listed; abs(v) is its Euclidean length; repr(Vector(1, 2)) == 'Vector(1, 2)'.",
      "import math\n\nclass Vector:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n    def __add__(self, o):\n        return Vector(self.x + o.x, self.y + o.y)\n    def __sub__(self, o):\n        return Vector(self.x - o.x, self.y - o.y)\n    def __mul__(self, k):\n        return Vector(self.x * k, self.y * k)\n    __rmul__ = __mul__\n    def __eq__(self, o):\n        return isinstance(o, Vector) and (self.x, self.y) == (o.x, o.y)\n    def __abs__(self):\n        return math.hypot(self.x, self.y)\n    def __repr__(self):\n        return f'Vector({self.x}, {self.y})'",
      "import math\n\nclass Vector:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n    def __add__(self, o):\n        return Vector(self.x + o.x, self.y + o.y)\n    def __sub__(self, o):\n        return Vector(o.x - self.x, o.y - self.y)\n    def __mul__(self, k):\n        return Vector(self.x * k, self.y * k)\n    __rmul__ = __mul__\n    def __eq__(self, o):\n        return isinstance(o, Vector) and (self.x, self.y) == (o.x, o.y)\n    def __abs__(self):\n        return math.hypot(self.x, self.y)\n    def __repr__(self):\n        return f'Vector({self.x}, {self.y})'",
      cases=[("Vector(1, 2) + Vector(3, 4)", "Vector(4, 6)"), ("Vector(5, 5) - Vector(1, 2)", "Vector(4, 3)"), ("Vector(1, 2) * 3", "Vector(3, 6)"),
             ("abs(Vector(3, 4))", "5.0"), ("repr(Vector(1, 2))", "'Vector(1, 2)'")]),
    T("counter_class", "class Counter:\n    def __init__(self, start: int = 0, step: int = 1): ...\n    def next(self) -> int: ...\n    def reset(self) -> None: ...",
      "next() returns the current value and then advances it by `step`; reset() returns to `start`.",
      "class Counter:\n    def __init__(self, start=0, step=1):\n        self.start, self.step, self.value = start, step, start\n    def next(self):\n        v = self.value\n        self.value += self.step\n        return v\n    def reset(self):\n        self.value = self.start",
      "class Counter:\n    def __init__(self, start=0, step=1):\n        self.start, self.step, self.value = start, step, start\n    def next(self):\n        self.value += self.step\n        return self.value\n    def reset(self):\n        self.value = 0",
      tests="""
      def test_counter():
          c = Counter(10, 5)
          assert [c.next(), c.next(), c.next()] == [10, 15, 20]
          c.reset()
          assert c.next() == 10
      """),
    T("lru_cache_class", "class LRUCache:\n    def __init__(self, capacity: int): ...\n    def get(self, key, default=None): ...\n    def put(self, key, value) -> None: ...",
      "A least-recently-used cache holding at most `capacity` items: get and put both count as a use; putting a new key into a full cache evicts the least recently used key.",
      "from collections import OrderedDict\n\nclass LRUCache:\n    def __init__(self, capacity):\n        self.capacity, self.data = capacity, OrderedDict()\n    def get(self, key, default=None):\n        if key not in self.data:\n            return default\n        self.data.move_to_end(key)\n        return self.data[key]\n    def put(self, key, value):\n        self.data[key] = value\n        self.data.move_to_end(key)\n        if len(self.data) > self.capacity:\n            self.data.popitem(last=False)",
      "class LRUCache:\n    def __init__(self, capacity):\n        self.capacity, self.data = capacity, {}\n    def get(self, key, default=None):\n        return self.data.get(key, default)\n    def put(self, key, value):\n        self.data[key] = value\n        if len(self.data) > self.capacity:\n            del self.data[next(iter(self.data))]",
      tests="""
      def test_lru():
          c = LRUCache(2)
          c.put('a', 1); c.put('b', 2)
          assert c.get('a') == 1
          c.put('c', 3)
          assert c.get('b') is None and c.get('a') == 1 and c.get('c') == 3
      """),
    T("temperature_class", "class Temperature:\n    def __init__(self, celsius: float): ...\n    celsius: float  # property, settable\n    fahrenheit: float  # property, settable",
      "A temperature stored in Celsius with a fahrenheit property that converts both ways (F = C * 9/5 + 32). Setting a temperature below absolute zero (-273.15 C) raises ValueError.",
      "class Temperature:\n    def __init__(self, celsius):\n        self.celsius = celsius\n    @property\n    def celsius(self):\n        return self._c\n    @celsius.setter\n    def celsius(self, value):\n        if value < -273.15:\n            raise ValueError('below absolute zero')\n        self._c = value\n    @property\n    def fahrenheit(self):\n        return self._c * 9 / 5 + 32\n    @fahrenheit.setter\n    def fahrenheit(self, value):\n        self.celsius = (value - 32) * 5 / 9",
      "class Temperature:\n    def __init__(self, celsius):\n        self.celsius = celsius\n    @property\n    def fahrenheit(self):\n        return self.celsius * 9 / 5 + 32\n    @fahrenheit.setter\n    def fahrenheit(self, value):\n        self.celsius = (value - 32) * 5 / 9",
      tests="""
      def test_temperature():
          t = Temperature(100)
          assert t.fahrenheit == 212
          t.fahrenheit = 32
          assert t.celsius == 0
          with pytest.raises(ValueError):
              Temperature(-300)
          with pytest.raises(ValueError):
              t.fahrenheit = -1000
      """),
    T("inventory_class", "class Inventory:\n    def add(self, item: str, qty: int = 1) -> None: ...\n    def remove(self, item: str, qty: int = 1) -> None: ...\n    def count(self, item: str) -> int: ...\n    def items(self) -> list[tuple[str, int]]: ...",
      "A stock list. remove raises KeyError for an unknown item and ValueError when removing more than is in stock (nothing changes); an item whose count reaches 0 disappears. items() lists (item, count) sorted by item.",
      "class Inventory:\n    def __init__(self):\n        self._c = {}\n    def add(self, item, qty=1):\n        self._c[item] = self._c.get(item, 0) + qty\n    def remove(self, item, qty=1):\n        if item not in self._c:\n            raise KeyError(item)\n        if qty > self._c[item]:\n            raise ValueError('not enough stock')\n        self._c[item] -= qty\n        if self._c[item] == 0:\n            del self._c[item]\n    def count(self, item):\n        return self._c.get(item, 0)\n    def items(self):\n        return sorted(self._c.items())",
      "class Inventory:\n    def __init__(self):\n        self._c = {}\n    def add(self, item, qty=1):\n        self._c[item] = self._c.get(item, 0) + qty\n    def remove(self, item, qty=1):\n        self._c[item] -= qty\n    def count(self, item):\n        return self._c.get(item, 0)\n    def items(self):\n        return sorted(self._c.items())",
      tests="""
      def test_inventory():
          inv = Inventory()
          inv.add('pen', 3); inv.add('cup')
          inv.remove('pen', 3)
          assert inv.items() == [('cup', 1)] and inv.count('pen') == 0
          with pytest.raises(KeyError):
              inv.remove('ink')
          with pytest.raises(ValueError):
              inv.remove('cup', 2)
          assert inv.count('cup') == 1
      """),
    T("queue_two_stacks", "class Queue:\n    def enqueue(self, item) -> None: ...\n    def dequeue(self): ...\n    def __len__(self) -> int: ...\n    def is_empty(self) -> bool: ...",
      "A FIFO queue; dequeue on an empty queue raises IndexError.",
      "from collections import deque\n\nclass Queue:\n    def __init__(self):\n        self._d = deque()\n    def enqueue(self, item):\n        self._d.append(item)\n    def dequeue(self):\n        if not self._d:\n            raise IndexError('empty queue')\n        return self._d.popleft()\n    def __len__(self):\n        return len(self._d)\n    def is_empty(self):\n        return not self._d",
      "class Queue:\n    def __init__(self):\n        self._d = []\n    def enqueue(self, item):\n        self._d.append(item)\n    def dequeue(self):\n        if not self._d:\n            raise IndexError('empty queue')\n        return self._d.pop()\n    def __len__(self):\n        return len(self._d)\n    def is_empty(self):\n        return not self._d",
      tests="""
      def test_fifo():
          q = Queue()
          for i in range(3):
              q.enqueue(i)
          assert [q.dequeue() for _ in range(3)] == [0, 1, 2] and q.is_empty()
          with pytest.raises(IndexError):
              q.dequeue()
      """),
    T("rectangle_class", "class Rectangle:\n    def __init__(self, width: float, height: float): ...\n    def area(self) -> float: ...\n    def perimeter(self) -> float: ...\n    def contains(self, x: float, y: float) -> bool: ...\n    def scaled(self, factor: float) -> 'Rectangle': ...",
      "An axis-aligned rectangle with its lower-left corner at (0, 0). Width and height must be positive (ValueError otherwise). contains() includes the border. scaled() returns a new rectangle.",
      "class Rectangle:\n    def __init__(self, width, height):\n        if width <= 0 or height <= 0:\n            raise ValueError('sides must be positive')\n        self.width, self.height = width, height\n    def area(self):\n        return self.width * self.height\n    def perimeter(self):\n        return 2 * (self.width + self.height)\n    def contains(self, x, y):\n        return 0 <= x <= self.width and 0 <= y <= self.height\n    def scaled(self, factor):\n        return Rectangle(self.width * factor, self.height * factor)",
      "class Rectangle:\n    def __init__(self, width, height):\n        self.width, self.height = width, height\n    def area(self):\n        return self.width * self.height\n    def perimeter(self):\n        return 2 * (self.width + self.height)\n    def contains(self, x, y):\n        return 0 < x < self.width and 0 < y < self.height\n    def scaled(self, factor):\n        self.width *= factor\n        self.height *= factor\n        return self",
      tests="""
      def test_rectangle():
          r = Rectangle(2, 3)
          assert r.area() == 6 and r.perimeter() == 10
          assert r.contains(2, 3) and r.contains(0, 0) and not r.contains(2.1, 1)
          big = r.scaled(2)
          assert big.area() == 24 and r.area() == 6
          with pytest.raises(ValueError):
              Rectangle(0, 1)
      """),
    T("event_emitter", "class Emitter:\n    def on(self, event: str, handler) -> None: ...\n    def off(self, event: str, handler) -> None: ...\n    def emit(self, event: str, *args) -> int: ...",
      "A tiny event emitter: handlers registered with on() are called in registration order by emit(event, *args), which returns how many handlers ran. off() removes one registration of a handler (no error if absent).",
      "class Emitter:\n    def __init__(self):\n        self._h = {}\n    def on(self, event, handler):\n        self._h.setdefault(event, []).append(handler)\n    def off(self, event, handler):\n        if handler in self._h.get(event, []):\n            self._h[event].remove(handler)\n    def emit(self, event, *args):\n        handlers = list(self._h.get(event, []))\n        for h in handlers:\n            h(*args)\n        return len(handlers)",
      "class Emitter:\n    def __init__(self):\n        self._h = {}\n    def on(self, event, handler):\n        self._h.setdefault(event, set()).add(handler)\n    def off(self, event, handler):\n        self._h[event].discard(handler)\n    def emit(self, event, *args):\n        handlers = self._h.get(event, set())\n        for h in handlers:\n            h(*args)\n        return len(handlers)",
      tests="""
      def test_emitter():
          e, seen = Emitter(), []
          f = lambda x: seen.append(('f', x))
          g = lambda x: seen.append(('g', x))
          e.on('a', f); e.on('a', g); e.on('a', f)
          assert e.emit('a', 1) == 3 and seen == [('f', 1), ('g', 1), ('f', 1)]
          e.off('a', f)
          assert e.emit('a', 2) == 2
          e.off('b', f)
          assert e.emit('none') == 0
      """),
    T("matrix_class", "class Matrix:\n    def __init__(self, rows: list[list[float]]): ...\n    def __matmul__(self, other: 'Matrix') -> 'Matrix': ...\n    def __eq__(self, other) -> bool: ...\n    shape: tuple[int, int]  # property",
      "A small matrix: `a @ b` is the matrix product and raises ValueError when the inner sizes differ; == compares entries; shape is (rows, columns).",
      "class Matrix:\n    def __init__(self, rows):\n        self.rows = [list(r) for r in rows]\n    @property\n    def shape(self):\n        return (len(self.rows), len(self.rows[0]) if self.rows else 0)\n    def __matmul__(self, o):\n        if self.shape[1] != o.shape[0]:\n            raise ValueError('shapes do not match')\n        return Matrix([[sum(a * b for a, b in zip(r, c)) for c in zip(*o.rows)] for r in self.rows])\n    def __eq__(self, o):\n        return isinstance(o, Matrix) and self.rows == o.rows",
      "class Matrix:\n    def __init__(self, rows):\n        self.rows = [list(r) for r in rows]\n    @property\n    def shape(self):\n        return (len(self.rows), len(self.rows[0]) if self.rows else 0)\n    def __matmul__(self, o):\n        return Matrix([[sum(a * b for a, b in zip(r, c)) for c in o.rows] for r in self.rows])\n    def __eq__(self, o):\n        return isinstance(o, Matrix) and self.rows == o.rows",
      cases=[("Matrix([[1, 2], [3, 4]]) @ Matrix([[5, 6], [7, 8]])", "Matrix([[19, 22], [43, 50]])"), ("Matrix([[1, 2, 3]]).shape", "(1, 3)")],
      raises=[("Matrix([[1, 2]]) @ Matrix([[1, 2]])", "ValueError")]),
    T("rate_limiter", "class RateLimiter:\n    def __init__(self, limit: int, window: float): ...\n    def allow(self, now: float) -> bool: ...",
      "Allow at most `limit` calls in any sliding window of `window` seconds: allow(now) returns True and records the call if fewer than `limit` recorded calls happened in (now - window, now], else returns False without recording it.",
      "from collections import deque\n\nclass RateLimiter:\n    def __init__(self, limit, window):\n        self.limit, self.window, self.calls = limit, window, deque()\n    def allow(self, now):\n        while self.calls and self.calls[0] <= now - self.window:\n            self.calls.popleft()\n        if len(self.calls) < self.limit:\n            self.calls.append(now)\n            return True\n        return False",
      "class RateLimiter:\n    def __init__(self, limit, window):\n        self.limit, self.window, self.calls = limit, window, []\n    def allow(self, now):\n        self.calls.append(now)\n        recent = [t for t in self.calls if t > now - self.window]\n        return len(recent) <= self.limit",
      tests="""
      def test_limiter():
          r = RateLimiter(2, 10)
          assert [r.allow(0), r.allow(1), r.allow(2), r.allow(9.5), r.allow(10), r.allow(10.5), r.allow(11)] == [True, True, False, False, True, False, True]
      """),
    T("todo_list_class", "class TodoList:\n    def add(self, title: str) -> int: ...\n    def done(self, todo_id: int) -> None: ...\n    def pending(self) -> list[str]: ...",
      "add() returns ids 1, 2, 3... in order; done(id) marks that item done and raises KeyError for an unknown id; pending() lists the titles not done, in the order added.",
      "class TodoList:\n    def __init__(self):\n        self._items, self._next = {}, 1\n    def add(self, title):\n        i = self._next\n        self._items[i] = [title, False]\n        self._next += 1\n        return i\n    def done(self, todo_id):\n        if todo_id not in self._items:\n            raise KeyError(todo_id)\n        self._items[todo_id][1] = True\n    def pending(self):\n        return [t for t, d in self._items.values() if not d]",
      "class TodoList:\n    def __init__(self):\n        self._items = []\n    def add(self, title):\n        self._items.append([title, False])\n        return len(self._items) - 1\n    def done(self, todo_id):\n        self._items[todo_id][1] = True\n    def pending(self):\n        return [t for t, d in self._items if not d]",
      tests="""
      def test_todos():
          t = TodoList()
          assert t.add('a') == 1 and t.add('b') == 2
          t.done(1)
          assert t.pending() == ['b']
          with pytest.raises(KeyError):
              t.done(99)
      """),
    T("frozen_point", "@dataclass(frozen=True, order=True)\nclass Point:\n    x: int\n    y: int\n    def manhattan(self, other: 'Point') -> int: ...",
      "An immutable, orderable, hashable point (use dataclasses); manhattan() is |dx| + |dy|.",
      "from dataclasses import dataclass\n\n@dataclass(frozen=True, order=True)\nclass Point:\n    x: int\n    y: int\n    def manhattan(self, other):\n        return abs(self.x - other.x) + abs(self.y - other.y)",
      "from dataclasses import dataclass\n\n@dataclass(order=True)\nclass Point:\n    x: int\n    y: int\n    def manhattan(self, other):\n        return abs(self.x - other.x + self.y - other.y)",
      cases=[("Point(1, 2).manhattan(Point(4, -2))", "7"), ("sorted([Point(2, 1), Point(1, 5)])", "[Point(1, 5), Point(2, 1)]"), ("len({Point(1, 1), Point(1, 1)})", "1")]),
]
