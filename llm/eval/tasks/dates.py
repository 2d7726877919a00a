"""Dates and times (held out of training entirely)."""

from mgpt.llm.eval.tasks import T

TASKS = [
    T("is_leap_year", "def is_leap_year(year: int) -> bool",
      "Return True for a Gregorian leap year: divisible by 4, except centuries, which must be divisible by 400.",
      "def is_leap_year(year):\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)",
      "def is_leap_year(year):\n    return year % 4 == 0 and year % 100 != 0",
      cases=[("is_leap_year(2024)", "True"), ("is_leap_year(1900)", "False"), ("is_leap_year(2000)", "True"), ("is_leap_year(2023)", "False")]),
    T("days_in_month", "def days_in_month(year: int, month: int) -> int",
      "Return the number of days in `month` (1-12) of `year`. Raise ValueError for a month outside 1-12.",
      "import calendar\n\ndef days_in_month(year, month):\n    if not 1 <= month <= 12:\n        raise ValueError('month must be 1-12')\n    return calendar.monthrange(year, month)[1]",
      "def days_in_month(year, month):\n    if not 1 <= month <= 12:\n        raise ValueError('month must be 1-12')\n    return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]",
      cases=[("days_in_month(2024, 2)", "29"), ("days_in_month(2023, 2)", "28"), ("days_in_month(2023, 4)", "30")],
      raises=[("days_in_month(2023, 13)", "ValueError")]),
    T("days_between", "def days_between(a: str, b: str) -> int",
      "Return the number of days from ISO date `a` ('YYYY-MM-DD') to ISO date `b`, negative if b is earlier.",
      "from datetime import date\n\ndef days_between(a, b):\n    return (date.fromisoformat(b) - date.fromisoformat(a)).days",
      "from datetime import date\n\ndef days_between(a, b):\n    return abs((date.fromisoformat(b) - date.fromisoformat(a)).days)",
      cases=[("days_between('2024-02-28', '2024-03-01')", "2"), ("days_between('2024-01-10', '2024-01-01')", "-9")]),
    T("weekday_name", "def weekday_name(iso_date: str) -> str",
      "Return the English weekday name ('Monday' ... 'Sunday') of an ISO date 'YYYY-MM-DD'.",
      "from datetime import date\n\nNAMES = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday']\n\ndef weekday_name(iso_date):\n    return NAMES[date.fromisoformat(iso_date).weekday()]",
      "from datetime import date\n\nNAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']\n\ndef weekday_name(iso_date):\n    return NAMES[date.fromisoformat(iso_date).weekday()]",
      cases=[("weekday_name('2024-01-01')", "'Monday'"), ("weekday_name('2023-12-31')", "'Sunday'")]),
    T("add_business_days", "def add_business_days(start: str, days: int) -> str",
      "Return the ISO date that is `days` (>= 0) business days after ISO date `start`, skipping Saturdays and Sundays. With days == 0 return `start` unchanged.",
      """
      from datetime import date, timedelta

      def add_business_days(start, days):
          d = date.fromisoformat(start)
          while days > 0:
              d += timedelta(days=1)
              if d.weekday() < 5:
                  days -= 1
          return d.isoformat()
      """,
      """
      from datetime import date, timedelta

      def add_business_days(start, days):
          d = date.fromisoformat(start) + timedelta(days=days)
          while d.weekday() >= 5:
              d += timedelta(days=1)
          return d.isoformat()
      """,
      cases=[("add_business_days('2024-01-05', 1)", "'2024-01-08'"), ("add_business_days('2024-01-01', 5)", "'2024-01-08'"),
             ("add_business_days('2024-01-06', 0)", "'2024-01-06'")]),
    T("age_on", "def age_on(birth: str, on: str) -> int",
      "Return a person's age in whole years on ISO date `on`, born on ISO date `birth` (the birthday itself counts as a completed year).",
      "from datetime import date\n\ndef age_on(birth, on):\n    b, d = date.fromisoformat(birth), date.fromisoformat(on)\n    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))",
      "from datetime import date\n\ndef age_on(birth, on):\n    b, d = date.fromisoformat(birth), date.fromisoformat(on)\n    return (d - b).days // 365",
      cases=[("age_on('2000-05-20', '2024-05-19')", "23"), ("age_on('2000-05-20', '2024-05-20')", "24"), ("age_on('1980-03-01', '2024-02-29')", "43")]),
    T("format_duration_hms", "def format_hms(seconds: int) -> str",
      "Format a non-negative number of seconds as 'H:MM:SS' (hours not padded, may exceed 24).",
      "def format_hms(seconds):\n    h, rest = divmod(seconds, 3600)\n    m, s = divmod(rest, 60)\n    return f'{h}:{m:02d}:{s:02d}'",
      "def format_hms(seconds):\n    h, rest = divmod(seconds, 3600)\n    m, s = divmod(rest, 60)\n    return f'{h}:{m}:{s}'",
      cases=[("format_hms(3725)", "'1:02:05'"), ("format_hms(0)", "'0:00:00'"), ("format_hms(90061)", "'25:01:01'")]),
    T("quarter_of", "def quarter_of(iso_date: str) -> str",
      "Return the calendar quarter of an ISO date as 'YYYY-Qn' (January-March is Q1).",
      "def quarter_of(iso_date):\n    y, m = int(iso_date[:4]), int(iso_date[5:7])\n    return f'{y}-Q{(m - 1) // 3 + 1}'",
      "def quarter_of(iso_date):\n    y, m = int(iso_date[:4]), int(iso_date[5:7])\n    return f'{y}-Q{m // 3 + 1}'",
      cases=[("quarter_of('2024-03-31')", "'2024-Q1'"), ("quarter_of('2024-04-01')", "'2024-Q2'"), ("quarter_of('2023-12-25')", "'2023-Q4'")]),
    T("parse_us_date", "def us_to_iso(text: str) -> str",
      "Convert a US date 'M/D/YYYY' (month and day may have one or two digits) to ISO 'YYYY-MM-DD'. Raise ValueError for an impossible date such as 2/30/2024.",
      "from datetime import date\n\ndef us_to_iso(text):\n    m, d, y = (int(x) for x in text.split('/'))\n    return date(y, m, d).isoformat()",
      "def us_to_iso(text):\n    m, d, y = text.split('/')\n    return f'{y}-{m.zfill(2)}-{d.zfill(2)}'",
      cases=[("us_to_iso('7/4/2024')", "'2024-07-04'"), ("us_to_iso('12/25/1999')", "'1999-12-25'")],
      raises=[("us_to_iso('2/30/2024')", "ValueError")]),
    T("month_calendar_days", "def month_start_weekday(year: int, month: int) -> int",
      "Return the weekday of the first day of the month, 0 = Monday ... 6 = Sunday.",
      "from datetime import date\n\ndef month_start_weekday(year, month):\n    return date(year, month, 1).weekday()",
      "from datetime import date\n\ndef month_start_weekday(year, month):\n    return date(year, month, 1).isoweekday()",
      cases=[("month_start_weekday(2024, 1)", "0"), ("month_start_weekday(2024, 9)", "6"), ("month_start_weekday(2024, 2)", "3")]),
    T("next_birthday_days", "def days_until_birthday(birthday: str, today: str) -> int",
      "Given a birthday 'MM-DD' and today's ISO date, return the days until the next birthday (0 if it is today). A 02-29 birthday is celebrated on 02-28 in non-leap years.",
      """
      import calendar
      from datetime import date

      def days_until_birthday(birthday, today):
          t = date.fromisoformat(today)
          m, d = (int(x) for x in birthday.split('-'))
          for year in (t.year, t.year + 1):
              dd = 28 if (m, d) == (2, 29) and not calendar.isleap(year) else d
              b = date(year, m, dd)
              if b >= t:
                  return (b - t).days
      """,
      """
      from datetime import date

      def days_until_birthday(birthday, today):
          t = date.fromisoformat(today)
          m, d = (int(x) for x in birthday.split('-'))
          b = date(t.year, m, d)
          if b < t:
              b = date(t.year + 1, m, d)
          return (b - t).days
      """,
      cases=[("days_until_birthday('05-20', '2024-05-20')", "0"), ("days_until_birthday('01-01', '2024-12-31')", "1"),
             ("days_until_birthday('02-29', '2023-02-01')", "27")]),
    T("overlapping_days", "def overlap_days(a_start: str, a_end: str, b_start: str, b_end: str) -> int",
      "Two periods are given by inclusive ISO start and end dates. Return how many days they share (0 if they do not overlap).",
      "from datetime import date\n\ndef overlap_days(a_start, a_end, b_start, b_end):\n    f = date.fromisoformat\n    lo, hi = max(f(a_start), f(b_start)), min(f(a_end), f(b_end))\n    return max(0, (hi - lo).days + 1)",
      "from datetime import date\n\ndef overlap_days(a_start, a_end, b_start, b_end):\n    f = date.fromisoformat\n    lo, hi = max(f(a_start), f(b_start)), min(f(a_end), f(b_end))\n    return max(0, (hi - lo).days)",
      cases=[("overlap_days('2024-01-01', '2024-01-10', '2024-01-05', '2024-01-20')", "6"),
             ("overlap_days('2024-01-01', '2024-01-02', '2024-02-01', '2024-02-02')", "0"),
             ("overlap_days('2024-01-01', '2024-01-01', '2024-01-01', '2024-01-01')", "1")]),
    T("iso_week", "def iso_week(iso_date: str) -> str",
      "Return the ISO-8601 week of a date as 'YYYY-Www' (the ISO week-numbering year, which can differ from the calendar year, and a two-digit week).",
      "from datetime import date\n\ndef iso_week(iso_date):\n    y, w, _ = date.fromisoformat(iso_date).isocalendar()\n    return f'{y}-W{w:02d}'",
      "from datetime import date\n\ndef iso_week(iso_date):\n    d = date.fromisoformat(iso_date)\n    return f'{d.year}-W{d.isocalendar()[1]:02d}'",
      cases=[("iso_week('2024-03-14')", "'2024-W11'"), ("iso_week('2021-01-03')", "'2020-W53'"), ("iso_week('2024-12-30')", "'2025-W01'")]),
    T("minutes_between_times", "def minutes_between(start: str, end: str) -> int",
      "Given two clock times 'HH:MM' (24-hour), return the minutes from start to end; if end is earlier than start, the end is on the next day.",
      "def minutes_between(start, end):\n    f = lambda t: int(t[:2]) * 60 + int(t[3:])\n    return (f(end) - f(start)) % (24 * 60)",
      "def minutes_between(start, end):\n    f = lambda t: int(t[:2]) * 60 + int(t[3:])\n    return abs(f(end) - f(start))",
      cases=[("minutes_between('09:15', '10:00')", "45"), ("minutes_between('23:30', '00:15')", "45"), ("minutes_between('12:00', '12:00')", "0")]),
    T("end_of_month", "def end_of_month(iso_date: str) -> str",
      "Return the ISO date of the last day of the month that `iso_date` falls in.",
      "import calendar\nfrom datetime import date\n\ndef end_of_month(iso_date):\n    d = date.fromisoformat(iso_date)\n    return d.replace(day=calendar.monthrange(d.year, d.month)[1]).isoformat()",
      "from datetime import date, timedelta\n\ndef end_of_month(iso_date):\n    d = date.fromisoformat(iso_date)\n    return (d.replace(day=1) + timedelta(days=30)).isoformat()",
      cases=[("end_of_month('2024-02-10')", "'2024-02-29'"), ("end_of_month('2023-12-01')", "'2023-12-31'"), ("end_of_month('2023-04-30')", "'2023-04-30'")]),
]
