"""The company's structured questions, one at a time: to measure how often a model's first
answer parses, and to record answers a model can learn from.

The product manager, architect and project manager ask for JSON documents (a PRD, a system
design, a task list) that their actions parse and validate (:func:`parses`: the parser
and pydantic schema the roles use). This module has

- the ideas: :data:`EVAL_IDEAS` (none of the golden runs is about one) to measure on and
  :data:`TRAIN_IDEAS` (disjoint from them) to make training data from;
- :func:`prd_messages`: what the product manager sends for an idea, built by the real
  ``WritePRD`` action, so a measurement asks what the company asks; :func:`prd_answers`
  a model's answers to it, free or under :func:`prd_format`'s grammar;
- :func:`golden_structured_requests`: the first-try structured requests of recorded runs,
  each with its schema (:func:`schema_of`);
- :func:`record_planning`: the planning half of the company (WritePRD, WriteDesign,
  WriteTasks) run on a model per idea, recorded as one transcript each, runs that needed
  a re-ask set apart: accepted first answers to distil from.

``benchmarks/bench_loop.py``, ``bench_self_distil.py`` and ``record_planning.py`` use them.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from mgpt.llm.backends.base import Model
from mgpt.workflows.company_eval import RETRY_MARK, STRUCTURED_MARK, slug

__all__ = ["EVAL_IDEAS", "TRAIN_IDEAS", "golden_structured_requests", "parses", "plan", "prd_answers", "prd_format",
           "prd_messages", "record_planning", "schema_of"]

#: Ideas to measure structured answers on: small projects none of the golden runs is about.
EVAL_IDEAS = [
    "A command-line tip calculator that splits a bill between friends.",
    "A password strength checker that explains what is missing.",
    "A tool that renames photos by the date in their file name.",
    "A flashcard quiz for vocabulary stored in a CSV file.",
    "A habit tracker that records daily check-ins and shows streaks.",
    "A markdown table formatter that aligns the columns.",
    "A countdown timer for the terminal with a pause key.",
    "A recipe scaler that converts ingredient amounts for N servings.",
    "A tool that finds duplicate files in a folder by content hash.",
    "A simple expense splitter for a shared flat.",
    "A Roman numeral converter in both directions.",
    "A library that validates and formats IBAN bank account numbers.",
    "A command-line dice roller that understands notation like 3d6+2.",
    "A tiny key-value store that persists to a JSON file.",
    "A tool that reports the word count and reading time of text files.",
    "A grade book that computes averages and letter grades per student.",
    "A URL shortener library with an in-memory mapping.",
    "A matrix calculator for addition and multiplication from the command line.",
    "A plant watering scheduler that says which plants need water today.",
    "A tool that converts CSV files to JSON lines.",
    "A reading list manager with tags and a 'next book' suggestion.",
    "A parking lot simulator that tracks free spaces by size.",
    "A tool that checks a text file for lines longer than a limit.",
    "A quiz scorer that reads answers and an answer key and prints the score.",
]

#: Ideas to make training data from (recorded or distilled answers): none of them is in EVAL_IDEAS.
TRAIN_IDEAS = [
    "A to-do list for the terminal with due dates and priorities.",
    "A command-line word counter for text files.",
    "A unit converter for lengths, weights and temperatures.",
    "A bookmark manager that stores links with tags in a JSON file.",
    "A stopwatch with lap times for the terminal.",
    "A tool that reports the largest files in a folder.",
    "A contact book with search by name and phone number.",
    "A budget tracker that sums expenses per category and month.",
    "A random password generator with length and character options.",
    "A tool that counts lines of code per language in a project.",
    "A simple inventory system for a small shop's stock levels.",
    "A tic-tac-toe game for two players in the terminal.",
    "A tool that validates email addresses in a CSV column.",
    "A weather log that records daily temperatures and shows averages.",
    "A meeting scheduler that finds a free slot for several people.",
    "A library loan tracker with due dates and overdue reminders.",
    "A tool that merges several CSV files with the same columns.",
    "A calorie counter that totals meals per day.",
    "A text adventure engine that reads rooms from a JSON file.",
    "A log file analyser that counts errors per hour.",
    "A command-line currency converter with rates from a local JSON file.",
    "A tool that finds broken relative links in markdown files.",
    "A pomodoro timer that logs finished work sessions.",
    "A student attendance register with a monthly summary.",
    "A tool that pretty-prints and validates JSON files.",
    "A car mileage log that computes fuel consumption.",
    "A simple bank account ledger with deposits, withdrawals and a balance.",
    "A tool that extracts all email addresses from text files.",
    "A gym workout logger that tracks sets, reps and weights.",
    "A text-based hangman game with a word list file.",
    "A tool that converts temperatures in a CSV column between Celsius and Fahrenheit.",
    "A birthday reminder that lists the birthdays in the next 30 days.",
    "A tool that splits a large text file into parts of N lines.",
    "A queue simulator for a bank counter with random arrivals.",
    "A tool that counts word frequencies and prints the top ten.",
    "A simple invoice generator that totals line items with tax.",
    "A command-line notes app that stores notes in a folder of text files.",
    "A loan calculator that prints a monthly repayment schedule.",
    "A tool that checks whether brackets in source files are balanced.",
    "A seat booking system for a small cinema hall.",
    "A tool that lists the files changed since a given date in a folder.",
    "A vending machine simulator that gives change in coins.",
    "A prime number tool that tests numbers and lists primes up to N.",
    "A shopping list manager that groups items by aisle.",
    "A tool that sorts the lines of a file and removes duplicates.",
    "A movie watchlist with ratings and a filter by genre.",
    "A tool that generates a multiplication table as text or CSV.",
    "A simple state machine for a traffic light with timings.",
    "A tool that anonymises names in a CSV file with stable pseudonyms.",
    "A chess clock for two players in the terminal.",
    "A tool that computes simple statistics (mean, median, mode) of numbers in a file.",
    "A medication reminder that says which doses are due now.",
    "A tool that converts between binary, octal, decimal and hexadecimal.",
    "A minimal bug tracker storing issues with status and priority in JSON.",
    "A tool that checks a folder of Python files for missing docstrings.",
    "A carpool planner that assigns riders to drivers by seats.",
    "A tool that turns a list of tasks with durations into a simple Gantt chart in text.",
    "A mini spreadsheet that evaluates cell formulas like A1+B2.",
    "A tool that finds anagrams of a word in a word list.",
    "A room booking tool for a small office with time slots.",
    "A tool that measures how long shell commands take and keeps a history.",
    "A caesar cipher tool that encrypts, decrypts and brute-forces text.",
    "A garden planner that lists which vegetables to sow each month.",
    "A tool that validates ISBN-10 and ISBN-13 numbers.",
]


def prd_messages(idea: str) -> list[dict[str, str]]:
    """The messages the product manager sends for ``idea``, built by the real WritePRD action
    (a model that records the request and stops), so an eval asks what the company asks."""
    from mgpt.actions.base import ActionContext
    from mgpt.actions.planning import WritePRD
    from mgpt.agents.message import Message
    from mgpt.llm.backends.client import LLM
    from mgpt.llm.backends.testing import FunctionModel
    from mgpt.roles.software import ProductManager

    seen = []

    class Asked(Exception):
        pass

    def record(messages, context):
        seen.append([{"role": m.role, "content": m.content} for m in messages])
        raise Asked

    action = WritePRD().bind(LLM(FunctionModel(record), role="ProductManager"))
    ctx = ActionContext(role_name="ProductManager", role_profile=ProductManager.profile,
                        role_goal=ProductManager.goal, news=[Message(content=idea)])
    try:
        asyncio.run(action.run(ctx))
    except Asked:
        pass
    if not seen:
        raise RuntimeError("WritePRD asked nothing: the action changed; update prd_messages")
    return seen[0]


def prd_format(*, max_string: int | None = None, max_items: int | None = None,
               name_length: int | None = None) -> Any:
    """The PRD's :class:`~mgpt.llm.backends.base.OutputFormat`: the company's own (what
    ``-m local`` decodes under) when no bound is given, else one with tighter bounds.

    The company's bounds (strings up to 1000 characters, 16 items, a package name of up to
    64) leave a 135M model room to loop inside one string until its budget ends, and those
    loops are what a student then learns. Tighter bounds (say strings of 100, 3 items,
    names of 32) give short, readable answers: the same schema, still accepted by the PRD
    model.
    """
    from mgpt.actions.documents import PRD
    from mgpt.llm.backends.base import OutputFormat
    from mgpt.llm.local.constrained import MAX_ITEMS, MAX_STRING, bounded_schema

    output = OutputFormat.from_model(PRD)
    if max_string is None and max_items is None and name_length is None:
        return output
    schema = bounded_schema(output.json_schema, max_string=max_string or MAX_STRING, max_items=max_items or MAX_ITEMS)
    if name_length is not None:
        # A pattern with its own repeat bound: the grammar leaves a pattern beside maxLength to
        # xgrammar, which does not bound it.
        schema["properties"]["project_name"]["pattern"] = f"^[a-z_][a-z0-9_]{{0,{name_length - 1}}}$"
    return output.model_copy(update={"json_schema": schema})


def prd_answers(model: Model, ideas: Sequence[str], *, output: Any = None) -> list[str]:
    """``model``'s answer to the product manager's request for each idea, decoded under
    ``output`` (an OutputFormat such as :func:`prd_format`'s) or free."""
    from mgpt.llm.backends.base import CallContext, ChatMessage

    out = []
    for idea in ideas:
        messages = [ChatMessage(role=m["role"], content=m["content"]) for m in prd_messages(idea)]
        context = CallContext(role="ProductManager", action="WritePRD")
        out.append(asyncio.run(model.complete(messages, output=output, context=context)).text)
    return out


def schema_of(messages: Sequence[dict[str, str]]) -> Any:
    """The pydantic schema a recorded structured request asks for (matched by its field
    list), or None."""
    from mgpt.actions import documents
    from mgpt.actions.base import describe_schema

    user = "\n".join(m["content"] for m in messages if m["role"] == "user")
    for name in ("PRD", "SystemDesign", "TaskList", "ChangeRequest", "DesignChange"):
        schema = getattr(documents, name, None)
        if schema is not None and describe_schema(schema) in user:
            return schema
    return None


def golden_structured_requests(runs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """The first-try structured requests of recorded ``runs``: ``source`` (run:action),
    ``messages`` and ``schema`` each."""
    from mgpt.llm.backends.replay import Transcript

    out = []
    for run in runs:
        for call in Transcript.load(Path(run)).calls:
            msgs = [{"role": m.role, "content": m.content} for m in call.request]
            users = [m["content"] for m in msgs if m["role"] == "user"]
            if not any(STRUCTURED_MARK in u for u in users) or any(u.startswith(RETRY_MARK) for u in users):
                continue
            schema = schema_of(msgs)
            if schema is not None:
                out.append({"source": f"{Path(run).stem}:{call.action}", "messages": msgs, "schema": schema})
    return out


def parses(text: str, schema: Any) -> bool:
    """Whether ``text`` holds a JSON object that ``schema`` accepts, as the roles parse it."""
    from mgpt.llm.parsing import extract_json

    try:
        schema.model_validate(extract_json(text))
    except ValueError:  # ParseError and pydantic's ValidationError
        return False
    return True


async def plan(model: Model, idea: str) -> list[str]:
    """Run WritePRD -> WriteDesign -> WriteTasks for ``idea`` on ``model``; the steps done."""
    from mgpt.actions.base import ActionContext
    from mgpt.actions.planning import WriteDesign, WritePRD, WriteTasks
    from mgpt.agents.message import Message
    from mgpt.llm.backends.client import LLM
    from mgpt.roles.software import Architect, ProductManager, ProjectManager

    done: list[str] = []
    news = [Message(content=idea)]
    for role, action in ((ProductManager, WritePRD()), (Architect, WriteDesign()), (ProjectManager, WriteTasks())):
        action.bind(LLM(model, role=role.name))
        ctx = ActionContext(role_name=role.name, role_profile=role.profile, role_goal=role.goal, news=list(news))
        payload = await action.run(ctx)
        news.append(Message(content=type(payload).__name__, payload=payload, cause_by=type(action)))
        done.append(type(action).__name__)
    return done


def record_planning(model: Model, ideas: Sequence[str], out: Path, *, start: int = 0,
                    log: Callable[[str], None] = print) -> int:
    """Plan each idea on ``model`` into ``out/<nnn>-<slug>.jsonl`` (numbered from ``start``);
    a run that needed a re-ask or stopped on an error goes to ``out/rejected/``, so ``out``
    holds accepted first answers only. Returns how many runs were clean."""
    from mgpt.llm.backends.replay import RecordingModel, Transcript, TranscriptHeader

    out.mkdir(parents=True, exist_ok=True)
    t0, clean = time.perf_counter(), 0
    for i, idea in enumerate(ideas, start=start):
        path = out / f"{i:03d}-{slug(idea)}.jsonl"
        rec = RecordingModel(model, path, header=TranscriptHeader(model=model.name, idea=idea))
        t1, why = time.perf_counter(), ""
        try:
            done = asyncio.run(plan(rec, idea))
        except Exception as e:  # noqa: BLE001 - one idea's failure is kept aside and the next goes on
            why = f"stopped: {type(e).__name__}: {str(e)[:200]}"
        finally:
            rec.close()
        retries = sum(m.role == "user" and m.content.startswith(RETRY_MARK)
                      for call in Transcript.load(path).calls for m in call.request)
        why = why or (f"{retries} re-ask(s)" if retries else "")
        if why:
            (out / "rejected").mkdir(exist_ok=True)
            path.replace(out / "rejected" / path.name)
            log(f"{path.name}: rejected after {time.perf_counter() - t1:.0f}s ({why})")
        else:
            clean += 1
            log(f"{path.name}: {', '.join(done)} in {time.perf_counter() - t1:.0f}s")
    log(f"{clean}/{len(ideas)} clean runs in {time.perf_counter() - t0:.0f}s; transcripts in {out}")
    return clean
