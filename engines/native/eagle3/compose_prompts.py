"""Compose a large, varied prompt set for training (and measuring) the EAGLE-3 draft head.

The original prompt files (``data/train_prompts.txt``, ``data/heldout_prompts.txt``) are
almost all "<template> <topic>" prose requests. This script writes many more prompts, of
the kinds users actually type into a small chat model, in ten families:

* ``code``: write a function, class or script (Python, JavaScript, Go, Rust, C), SQL
  queries, Bash scripts; explain a pasted snippet; find the bug in one; convert one to
  another language; write unit tests for a function.
* ``lists``: list N things (N from 3 to 10), ranked and top-N lists, pros and cons.
* ``rewriting``: make a sentence formal, casual, shorter or clearer, fix its grammar;
  turn a paragraph into bullet points, summarize or shorten it; translate simple
  sentences into French, Spanish or German.
* ``questions``: why / how / what is / what is the difference / what would happen if.
* ``math``: arithmetic and word problems (numbers drawn from seeded RNGs), unit
  conversions, logic puzzles.
* ``structured``: JSON objects, markdown tables, CSV rows, YAML configs, numbered plans.
* ``extraction``: pull names, dates and places out of a text; sentiment of a review;
  sort items into categories; label headlines; spot spam.
* ``creative``: haiku, limericks, acrostics, story openings (character x setting),
  slogans, product names.
* ``advice``: practical how-to questions and everyday situations.
* ``role``: role-play / system-style instructions ("You are a travel agent. ...") and
  answer-format constraints ("Answer in exactly three sentences: ...").

Every topic, sentence, paragraph, snippet and task below was written for this file.

Split rule: the held-out set must measure the head on material it never trained on, so
the split is made on MATERIALS, not on prompts. Each material list (tasks, snippets,
sentences, subjects, scenarios, ...) is shuffled with an RNG seeded by the list's name
and ``HELDOUT_FRACTION`` (12%, at least one item) of it is held out. Held-out prompts
are built only from held-out materials and training prompts only from training
materials; templates (the phrasings around a material) are shared. ``heldout_materials``
returns, for each held-out material, the strings that identify it (all of them must
occur for a prompt to contain it); the tests check that no training prompt does. Bare
arithmetic questions have no material besides their numbers: each side draws its own
from its own seeded RNG (names in word problems are shared fillers, like numbers).

Each family's candidate prompts come in sub-pools (e.g. code: write / explain / bug /
convert / test ...); a family's quota is drawn round-robin over its shuffled sub-pools,
so every kind of prompt is represented. No prompt appears twice, in both splits, or
as a line of the original prompt files. The families are then interleaved evenly, so
any prefix of an output file is a varied mix.

Everything is deterministic (fixed seeds, no dependence on hash randomization).
Output: one JSON string per line (prompts may contain newlines), in
``data/train_prompts_composed.jsonl`` and ``data/heldout_prompts_composed.jsonl``.

Regenerate (and commit the two files) with::

    .venv/bin/python -m engines.native.eagle3.compose_prompts
"""

from __future__ import annotations

import functools
import json
import random
import re
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from engines.native.eagle3.dataset import HELDOUT_COMPOSED, HELDOUT_PROMPTS, TRAIN_COMPOSED, TRAIN_PROMPTS

T = TypeVar("T")

Marker = tuple[str, ...]
"""Strings identifying one material: a prompt contains the material if it contains all of them."""

TRAIN_OUT = TRAIN_COMPOSED
HELDOUT_OUT = HELDOUT_COMPOSED
OLD_PROMPT_FILES = (TRAIN_PROMPTS, HELDOUT_PROMPTS)

SEED = 20240611
HELDOUT_FRACTION = 0.12
MAX_CHARS = 1500


# --------------------------------------------------------------------------- helpers


def _lines(block: str) -> list[str]:
    """Non-empty stripped lines of a block of text."""
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


def _rows(block: str) -> list[tuple[str, ...]]:
    """Lines of a block, each split on `` | ``."""
    return [tuple(part.strip() for part in line.split(" | ")) for line in _lines(block)]


def _pairs(block: str) -> list[tuple[str, str]]:
    rows = _rows(block)
    assert all(len(r) == 2 for r in rows), [r for r in rows if len(r) != 2]
    return [(r[0], r[1]) for r in rows]


def _triples(block: str) -> list[tuple[str, str, str]]:
    rows = _rows(block)
    assert all(len(r) == 3 for r in rows), [r for r in rows if len(r) != 3]
    return [(r[0], r[1], r[2]) for r in rows]


def _paragraphs(block: str) -> list[str]:
    """Blank-line separated items of a block, each with its lines joined by spaces."""
    items = re.split(r"\n\s*\n", textwrap.dedent(block).strip())
    return [" ".join(_lines(item)) for item in items if item.strip()]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _one(item: str) -> list[Marker]:
    return [(item,)]


def _whole(item: tuple[str, ...]) -> list[Marker]:
    return [item]


def _literal(template: str) -> str:
    """The longest fixed stretch of a ``str.format`` template, trimmed to whole words."""
    pieces = re.split(r"\{[^{}]*\}", template)
    return max(pieces, key=len).strip(" $%.,?:;!'\"()-")


NUMBER_WORDS = {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}


def _count(rng: random.Random, low: int = 3, high: int = 10) -> str:
    """A number from low to high, spelled out more often than not."""
    n = rng.randint(low, high)
    return NUMBER_WORDS[n] if n in NUMBER_WORDS and rng.random() < 0.6 else str(n)


def _num(value: float) -> str:
    """A number without a trailing ``.0``."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def split_materials(name: str, items: Sequence[T]) -> tuple[list[T], list[T]]:
    """(training, held-out) parts of a material list: a seeded ~12% is held out."""
    order = list(range(len(items)))
    random.Random(f"{SEED}:split:{name}").shuffle(order)
    held = set(order[: max(1, round(len(items) * HELDOUT_FRACTION))])
    train = [x for i, x in enumerate(items) if i not in held]
    heldout = [x for i, x in enumerate(items) if i in held]
    return train, heldout


@dataclass
class Side:
    """One side of the split, as seen by a family builder."""

    heldout: bool
    rng: random.Random
    registry: dict[str, list[Marker]] = field(default_factory=dict)

    def take(self, name: str, items: Sequence[T], markers: Callable[[T], Iterable[Marker]]) -> list[T]:
        """This side's part of a material list; records the held-out part's markers."""
        assert len(set(map(repr, items))) == len(items), f"duplicate material in {name}"
        train, heldout = split_materials(name, items)
        self.registry[name] = [m for item in heldout for m in markers(item)]
        return heldout if self.heldout else train


# --------------------------------------------------------------------------- code

LANGS = ("Python", "JavaScript", "Go", "Rust", "C")
FENCE = {
    "Python": "python",
    "JavaScript": "javascript",
    "Go": "go",
    "Rust": "rust",
    "C": "c",
    "SQL": "sql",
    "Bash": "bash",
}
TEST_FRAMEWORK = {
    "Python": "pytest",
    "JavaScript": "Jest",
    "Go": "Go's testing package",
    "Rust": "Rust's built-in #[test] functions",
    "C": "plain assert() calls in a main function",
}
CONVERT_TARGETS = {
    "Python": ("JavaScript", "Go", "Rust", "TypeScript"),
    "JavaScript": ("Python", "TypeScript", "Go"),
    "Go": ("Python", "Rust", "JavaScript"),
    "Rust": ("Python", "Go", "C"),
    "C": ("Python", "Rust", "Go"),
    "SQL": ("Python with pandas",),
    "Bash": ("Python", "PowerShell"),
}
CLASS_WORD = {
    "Python": "class",
    "JavaScript": "class",
    "Go": "struct type with methods",
    "Rust": "struct with an impl block",
    "C": "struct plus a small set of functions",
}

FUNCTION_TASKS = _lines(
    """
    reverses the order of the words in a sentence
    checks whether a string is a palindrome, ignoring spaces and letter case
    returns the n-th Fibonacci number without using recursion
    counts how many times each word appears in a piece of text
    merges two sorted lists into one sorted list
    removes duplicate values from a list while keeping the original order
    converts a temperature from Celsius to Fahrenheit and back
    finds both the largest and the smallest number in a list in a single pass
    checks whether a number is prime
    returns the greatest common divisor of two integers
    flattens a nested list of integers of any depth
    does a basic check that a string looks like an email address
    splits a list into chunks of a given size
    rotates an array to the right by k positions
    computes the average of a list of numbers and returns zero for an empty list
    finds the first character in a string that does not repeat
    converts a Roman numeral such as XIV into an integer
    turns a non-negative integer into its binary representation as a string
    checks whether two words are anagrams of each other
    capitalizes the first letter of every word in a sentence
    returns all primes below a limit using the sieve of Eratosthenes
    performs a binary search on a sorted array and returns the index or -1
    counts the vowels in a string
    computes the factorial of a number with a loop
    transposes a matrix stored as a list of rows
    checks whether a given year is a leap year
    parses a date string like 2024-03-15 into year, month and day
    returns the second largest distinct value in a list
    groups a list of words by their first letter
    computes the running total of a list of numbers
    finds the longest common prefix of a list of strings
    checks whether the brackets, braces and parentheses in a string are balanced
    converts a camelCase identifier to snake_case
    generates a random password of a given length using letters and digits
    computes the dot product of two vectors of the same length
    compresses a string with run-length encoding, so that aaabcc becomes a3b1c2
    finds all pairs of numbers in a list that add up to a target value
    sorts a list of people by age, and by name when the ages are equal
    implements bubble sort on an array of integers
    shortens a string to a maximum length and adds an ellipsis if it was cut
    computes the monthly payment of a loan from the principal, the yearly rate and the number of months
    converts a number of seconds into hours, minutes and seconds
    shuffles an array in place with the Fisher-Yates algorithm
    checks whether a list is sorted in ascending order
    returns the most common element of a list
    masks all but the last four digits of a credit card number
    computes the Levenshtein edit distance between two strings
    counts the number of 1 bits in an unsigned integer
    finds the missing number in an array that holds 1 to n with exactly one value absent
    returns the intersection of two arrays without duplicates
    checks whether a 9x9 Sudoku row, given as an array, contains each digit 1 to 9 once
    converts a string of comma-separated numbers into an array of integers, skipping empty entries
    """
)
FUNCTION_TEMPLATES = _lines(
    """
    Write a {lang} function that {task}.
    Can you write a {lang} function that {task}?
    I need a function in {lang} that {task}. Please include a short example of calling it.
    Show me how to write a {lang} function that {task}.
    Implement a function in {lang} that {task}, and tell me its time complexity.
    Write {lang} code for a function that {task}. Keep it simple and add comments.
    How would you write a function that {task} in {lang}?
    Give me a {lang} implementation of a function that {task}.
    In {lang}, write a small, well-named function that {task}. Handle edge cases.
    """
)
CLASS_TASKS = _lines(
    """
    a stack that supports push, pop, peek and an is-empty check
    a queue built from two stacks
    a bank account with deposit and withdraw operations whose balance can never go negative
    a to-do list where items can be added, marked as done and listed
    a 2D point with a method that returns the distance to another point
    a rectangle with methods for its area, its perimeter and whether it is a square
    a counter that can be incremented, decremented and reset to zero
    a least-recently-used cache with a fixed capacity
    a shopping cart that stores items with prices and computes the total including tax
    a sensor log that keeps readings and reports the average of the last ten
    a library book with a title, an author and methods to check it out and return it
    a stopwatch that can be started, stopped and asked for the elapsed time
    a small inventory that tracks item quantities and warns when stock runs low
    a singly linked list with append, prepend and a method that prints every value
    a 2x2 matrix type supporting addition and multiplication
    a rate limiter that allows at most N calls per second
    a deck of playing cards that can be shuffled and dealt
    a thermostat with a target temperature, a current temperature and a heating on/off state
    """
)
CLASS_TEMPLATES = _lines(
    """
    Write a {lang} {kind} for {thing}.
    Design a {kind} in {lang} representing {thing}.
    Implement {thing} as a {lang} {kind}, with a small usage example.
    Can you code {thing} in {lang}? Use a {kind}.
    Show me a clean {lang} {kind} that models {thing}, with comments on the design choices.
    """
)
SCRIPT_LANGS = ("Python", "Node.js", "Go")
SCRIPT_TASKS = _lines(
    """
    renames every .txt file in a folder by adding today's date to the front of the name
    reads a CSV file of expenses and prints the total spent in each category
    watches a folder and prints a message whenever a new file appears
    asks the user for a number and prints its multiplication table up to 10
    plays a number guessing game in the terminal with hints like higher and lower
    finds the ten largest files anywhere under a directory
    converts a JSON file containing a list of users into a CSV file
    counts how often each HTTP status code appears in a web server access log
    copies a folder into a zip archive named after the current date
    prints a simple calendar for the current month
    removes blank lines and trailing spaces from a text file
    reads a list of words from a file and prints the ones that appear more than once
    checks a list of URLs from a file and reports which ones are not reachable
    splits a large log file into smaller files of 10,000 lines each
    """
)
SCRIPT_TEMPLATES = _lines(
    """
    Write a {lang} script that {task}.
    I'd like a small {lang} script that {task}. Can you write it?
    Create a command-line {lang} program that {task}.
    How can I write a {lang} script that {task}? Please explain how to run it.
    """
)
SQL_TASKS = _lines(
    """
    returns the five customers who spent the most, given customers(id, name) and orders(id, customer_id, total)
    counts the orders per month in an orders table that has a created_at column
    finds employees who earn more than their manager, using employees(id, name, salary, manager_id)
    lists products that have never been ordered, given products(id, name) and order_items(order_id, product_id)
    returns the average rating of each movie, but only for movies with at least ten ratings
    deletes duplicate rows from a contacts table, keeping the lowest id for each email address
    finds the second highest salary in an employees table
    shows every department with its number of employees, including departments that have none
    returns all users who signed up in the last 30 days
    computes a running total of daily sales from a sales(day, amount) table
    creates a table for blog posts with an id, a title, a body, an author id and a publication time
    finds customers who ordered something in 2023 but nothing in 2024
    ranks students by score within each class, given scores(student, class, score)
    raises the price of every product in the 'books' category by 10 percent
    returns the three most borrowed books from a loans(book_id, member_id, loaned_on) table
    finds pairs of users who live in the same city, without listing a pair twice
    """  # noqa: E501
)
SQL_TEMPLATES = _lines(
    """
    Write a SQL query that {task}.
    How do I write a query that {task}?
    Give me the SQL that {task}, and explain how it works.
    I'm using PostgreSQL. Write a query that {task}.
    What's a clean SQL query that {task}?
    """
)
BASH_TASKS = _lines(
    """
    counts the lines in every .py file under a directory and prints the total
    deletes log files older than seven days from /var/log/myapp
    prints the five biggest directories under the current folder
    renames all .jpeg files in a folder to .jpg
    checks whether a website answers with HTTP 200 and prints a warning if it does not
    pings each server in a list of host names once and reports which are down
    finds every TODO comment in a project and prints the file name and line number
    makes a dated backup copy of a config file before editing it
    warns when the disk usage of the root partition is above 90 percent
    extracts the unique IP addresses from an access log and counts the requests from each
    waits until a given file exists, checking every five seconds
    converts all .wav files in a folder to .mp3 with ffmpeg
    prints the ten most frequently used commands from the shell history
    """
)
BASH_TEMPLATES = _lines(
    """
    Write a Bash script that {task}.
    Give me a shell one-liner or a short script that {task}.
    How can I write a bash script that {task}?
    I'm on Linux. Which bash command {task}?
    """
)


@dataclass(frozen=True, slots=True)
class Snippet:
    lang: str
    code: str
    testable: bool = False


@dataclass(frozen=True, slots=True)
class Buggy:
    lang: str
    purpose: str
    code: str


def _code(lang: str, code: str) -> str:
    text = textwrap.dedent(code).strip("\n")
    if lang == "Go":  # gofmt indents with tabs
        text = "\n".join(
            "\t" * ((len(line) - len(line.lstrip(" "))) // 4) + line.lstrip(" ") for line in text.splitlines()
        )
    return text


def _snip(lang: str, code: str, *, testable: bool = False) -> Snippet:
    return Snippet(lang, _code(lang, code), testable)


def _bug(lang: str, purpose: str, code: str) -> Buggy:
    return Buggy(lang, purpose, _code(lang, code))


SNIPPETS = [
    _snip(
        "Python",
        """
        def chunk(items, size):
            return [items[i:i + size] for i in range(0, len(items), size)]
        """,
        testable=True,
    ),
    _snip(
        "Python",
        """
        def word_lengths(sentence):
            result = {}
            for word in sentence.split():
                result[word] = len(word)
            return result
        """,
        testable=True,
    ),
    _snip(
        "Python",
        """
        from collections import Counter

        def top_letters(text, n=3):
            letters = [c.lower() for c in text if c.isalpha()]
            return Counter(letters).most_common(n)
        """,
        testable=True,
    ),
    _snip(
        "Python",
        """
        def is_sorted(values):
            return all(a <= b for a, b in zip(values, values[1:]))
        """,
        testable=True,
    ),
    _snip(
        "Python",
        """
        def clamp(value, low, high):
            if value < low:
                return low
            if value > high:
                return high
            return value
        """,
        testable=True,
    ),
    _snip(
        "Python",
        """
        def parse_pairs(line):
            pairs = {}
            for part in line.split(";"):
                if "=" in part:
                    key, value = part.split("=", 1)
                    pairs[key.strip()] = value.strip()
            return pairs
        """,
        testable=True,
    ),
    _snip(
        "Python",
        """
        import time

        def retry(func, attempts=3, delay=1.0):
            for i in range(attempts):
                try:
                    return func()
                except Exception:
                    if i == attempts - 1:
                        raise
                    time.sleep(delay)
        """,
    ),
    _snip(
        "Python",
        """
        class Celsius:
            def __init__(self, degrees):
                self.degrees = degrees

            @property
            def fahrenheit(self):
                return self.degrees * 9 / 5 + 32
        """,
        testable=True,
    ),
    _snip(
        "Python",
        """
        def squares_of_evens(numbers):
            return [n * n for n in numbers if n % 2 == 0]
        """,
        testable=True,
    ),
    _snip(
        "Python",
        """
        with open("notes.txt") as f:
            lines = [line.rstrip() for line in f if line.strip()]
        print(len(lines), "non-empty lines")
        """,
    ),
    _snip(
        "Python",
        """
        def initials(full_name):
            parts = [p for p in full_name.split() if p]
            return "".join(p[0].upper() + "." for p in parts)
        """,
        testable=True,
    ),
    _snip(
        "Python",
        """
        class Inventory:
            def __init__(self):
                self.items = {}

            def add(self, name, quantity, price):
                if quantity <= 0:
                    raise ValueError("quantity must be positive")
                current = self.items.get(name, {"quantity": 0, "price": price})
                current["quantity"] += quantity
                current["price"] = price
                self.items[name] = current

            def remove(self, name, quantity):
                if name not in self.items:
                    raise KeyError(name)
                self.items[name]["quantity"] -= quantity
                if self.items[name]["quantity"] <= 0:
                    del self.items[name]

            def total_value(self):
                return sum(i["quantity"] * i["price"] for i in self.items.values())

            def low_stock(self, threshold=5):
                return [n for n, i in self.items.items() if i["quantity"] < threshold]
        """,
        testable=True,
    ),
    _snip(
        "Python",
        """
        import csv
        from collections import defaultdict

        def summarize(path):
            totals = defaultdict(float)
            counts = defaultdict(int)
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    category = row["category"].strip().lower()
                    totals[category] += float(row["amount"])
                    counts[category] += 1
            for category in sorted(totals, key=totals.get, reverse=True):
                avg = totals[category] / counts[category]
                print(f"{category:<15} {totals[category]:>10.2f}  ({counts[category]} items, avg {avg:.2f})")

        if __name__ == "__main__":
            summarize("expenses.csv")
        """,
    ),
    _snip(
        "JavaScript",
        """
        function renderTodoList(container, todos) {
          container.innerHTML = "";
          const list = document.createElement("ul");
          for (const todo of todos) {
            const item = document.createElement("li");
            const box = document.createElement("input");
            box.type = "checkbox";
            box.checked = todo.done;
            box.addEventListener("change", () => {
              todo.done = box.checked;
              item.classList.toggle("done", todo.done);
            });
            item.append(box, " " + todo.title);
            if (todo.done) item.classList.add("done");
            list.appendChild(item);
          }
          container.appendChild(list);
          return list;
        }
        """,
    ),
    _snip(
        "Go",
        """
        type Cache struct {
            mu    sync.Mutex
            items map[string]entry
            ttl   time.Duration
        }

        type entry struct {
            value   string
            expires time.Time
        }

        func NewCache(ttl time.Duration) *Cache {
            return &Cache{items: make(map[string]entry), ttl: ttl}
        }

        func (c *Cache) Set(key, value string) {
            c.mu.Lock()
            defer c.mu.Unlock()
            c.items[key] = entry{value: value, expires: time.Now().Add(c.ttl)}
        }

        func (c *Cache) Get(key string) (string, bool) {
            c.mu.Lock()
            defer c.mu.Unlock()
            e, ok := c.items[key]
            if !ok || time.Now().After(e.expires) {
                delete(c.items, key)
                return "", false
            }
            return e.value, true
        }
        """,
    ),
    _snip(
        "JavaScript",
        """
        function debounce(fn, wait) {
          let timer = null;
          return function (...args) {
            clearTimeout(timer);
            timer = setTimeout(() => fn.apply(this, args), wait);
          };
        }
        """,
    ),
    _snip(
        "JavaScript",
        """
        const totals = orders.reduce((acc, order) => {
          acc[order.customer] = (acc[order.customer] || 0) + order.amount;
          return acc;
        }, {});
        """,
    ),
    _snip(
        "JavaScript",
        """
        function capitalizeWords(text) {
          return text
            .split(" ")
            .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
            .join(" ");
        }
        """,
        testable=True,
    ),
    _snip(
        "JavaScript",
        """
        async function loadUsers(ids) {
          const results = [];
          for (const id of ids) {
            const res = await fetch(`/api/users/${id}`);
            if (res.ok) results.push(await res.json());
          }
          return results;
        }
        """,
    ),
    _snip(
        "JavaScript",
        """
        function range(start, end, step = 1) {
          const out = [];
          for (let i = start; i < end; i += step) out.push(i);
          return out;
        }
        """,
        testable=True,
    ),
    _snip(
        "JavaScript",
        """
        function groupBy(items, key) {
          const groups = new Map();
          for (const item of items) {
            const k = item[key];
            if (!groups.has(k)) groups.set(k, []);
            groups.get(k).push(item);
          }
          return groups;
        }
        """,
        testable=True,
    ),
    _snip(
        "Go",
        """
        func sum(nums []int) int {
            total := 0
            for _, n := range nums {
                total += n
            }
            return total
        }
        """,
        testable=True,
    ),
    _snip(
        "Go",
        """
        func reverse(s string) string {
            r := []rune(s)
            for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
                r[i], r[j] = r[j], r[i]
            }
            return string(r)
        }
        """,
        testable=True,
    ),
    _snip(
        "Go",
        """
        func countWords(text string) map[string]int {
            counts := make(map[string]int)
            for _, w := range strings.Fields(strings.ToLower(text)) {
                counts[w]++
            }
            return counts
        }
        """,
        testable=True,
    ),
    _snip(
        "Go",
        """
        func worker(jobs <-chan int, results chan<- int) {
            for j := range jobs {
                results <- j * 2
            }
        }
        """,
    ),
    _snip(
        "Rust",
        """
        fn average(values: &[f64]) -> Option<f64> {
            if values.is_empty() {
                return None;
            }
            Some(values.iter().sum::<f64>() / values.len() as f64)
        }
        """,
        testable=True,
    ),
    _snip(
        "Rust",
        """
        fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
            if a.len() >= b.len() { a } else { b }
        }
        """,
        testable=True,
    ),
    _snip(
        "Rust",
        """
        let squares: Vec<u32> = (1..=20).filter(|n| n % 2 == 0).map(|n| n * n).collect();
        println!("{:?}", squares);
        """,
    ),
    _snip(
        "Rust",
        """
        fn count_vowels(s: &str) -> usize {
            s.chars().filter(|c| "aeiouAEIOU".contains(*c)).count()
        }
        """,
        testable=True,
    ),
    _snip(
        "C",
        """
        int max_of(const int *arr, int n) {
            int best = arr[0];
            for (int i = 1; i < n; i++) {
                if (arr[i] > best) best = arr[i];
            }
            return best;
        }
        """,
        testable=True,
    ),
    _snip(
        "C",
        """
        void swap(int *a, int *b) {
            int tmp = *a;
            *a = *b;
            *b = tmp;
        }
        """,
        testable=True,
    ),
    _snip(
        "C",
        """
        size_t count_char(const char *s, char c) {
            size_t n = 0;
            while (*s) {
                if (*s++ == c) n++;
            }
            return n;
        }
        """,
        testable=True,
    ),
    _snip(
        "SQL",
        """
        SELECT c.name, COUNT(o.id) AS order_count
        FROM customers c
        LEFT JOIN orders o ON o.customer_id = c.id
        GROUP BY c.name
        HAVING COUNT(o.id) > 5
        ORDER BY order_count DESC;
        """,
    ),
    _snip(
        "SQL",
        """
        SELECT department, AVG(salary) AS avg_salary
        FROM employees
        WHERE hired_on >= '2020-01-01'
        GROUP BY department;
        """,
    ),
    _snip(
        "Bash",
        """
        for f in *.log; do
          gzip "$f"
        done
        """,
    ),
    _snip(
        "Bash",
        r"""
        find . -name "*.tmp" -mtime +3 -exec rm {} \;
        """,
    ),
    _snip(
        "Bash",
        """
        count=$(grep -c "ERROR" app.log)
        if [ "$count" -gt 0 ]; then
          echo "Found $count errors"
        fi
        """,
    ),
]

BUGGY = [
    _bug(
        "Python",
        "return the average of a list of numbers",
        """
        def average(nums):
            total = 0
            for n in nums:
                total = n
            return total / len(nums)
        """,
    ),
    _bug(
        "Python",
        "return the index of a target in a sorted list, or -1 if it is missing",
        """
        def binary_search(items, target):
            lo, hi = 0, len(items)
            while lo < hi:
                mid = (lo + hi) // 2
                if items[mid] < target:
                    lo = mid
                elif items[mid] > target:
                    hi = mid
                else:
                    return mid
            return -1
        """,
    ),
    _bug(
        "Python",
        "add an item to a fresh list each time it is called without a list",
        """
        def add_item(item, items=[]):
            items.append(item)
            return items
        """,
    ),
    _bug(
        "Python",
        "count down from n to 1 and then print Liftoff",
        """
        def countdown(n):
            while n > 0:
                print(n)
            print("Liftoff!")
        """,
    ),
    _bug(
        "Python",
        "check whether a word is a palindrome",
        """
        def is_palindrome(word):
            return word == word.reverse()
        """,
    ),
    _bug(
        "Python",
        "return the last element of a list",
        """
        def last(items):
            return items[len(items)]
        """,
    ),
    _bug(
        "Python",
        "remove every negative number from a list",
        """
        def drop_negatives(nums):
            for n in nums:
                if n < 0:
                    nums.remove(n)
            return nums
        """,
    ),
    _bug(
        "Python",
        "add up the numbers in a text file, one number per line",
        """
        total = 0
        for line in open("numbers.txt"):
            total += line
        print(total)
        """,
    ),
    _bug(
        "Python",
        "return a new dictionary with the keys and values swapped",
        """
        def invert(d):
            result = {}
            for key, value in d:
                result[value] = key
            return result
        """,
    ),
    _bug(
        "Python",
        "print the ten most common words in a text file with their counts",
        """
        def word_frequencies(path):
            counts = {}
            with open(path) as f:
                for line in f:
                    for word in line.split():
                        word = word.strip(".,!?").lower()
                        if word in counts:
                            counts[word] += 1
                        else:
                            counts[word] = 0
            top = sorted(counts.items(), key=lambda kv: kv[1])[:10]
            for word, n in top:
                print(word, n)
        """,
    ),
    _bug(
        "JavaScript",
        "add up the prices of all items in a shopping cart",
        """
        function cartTotal(items) {
          let total;
          for (const item of items) {
            total += item.price;
          }
          return total;
        }
        """,
    ),
    _bug(
        "JavaScript",
        "print the numbers 0 to 4, one per second",
        """
        for (var i = 0; i < 5; i++) {
          setTimeout(() => console.log(i), 1000 * i);
        }
        """,
    ),
    _bug(
        "JavaScript",
        "check whether a user is an admin",
        """
        function isAdmin(user) {
          if (user.role = "admin") {
            return true;
          }
          return false;
        }
        """,
    ),
    _bug(
        "JavaScript",
        "sort an array of numbers from smallest to largest",
        """
        const sorted = [10, 1, 25, 3].sort();
        console.log(sorted);
        """,
    ),
    _bug(
        "Go",
        "return the sum of a slice of integers",
        """
        func sum(nums []int) int {
            var total int
            for i := 1; i < len(nums); i++ {
                total += nums[i]
            }
            return total
        }
        """,
    ),
    _bug(
        "Go",
        "return the squares of 0 to n-1",
        """
        func squares(n int) []int {
            result := make([]int, n)
            for i := 0; i < n; i++ {
                result = append(result, i*i)
            }
            return result
        }
        """,
    ),
    _bug(
        "Rust",
        "push two numbers into a vector and print it",
        """
        fn main() {
            let v = Vec::new();
            v.push(1);
            v.push(2);
            println!("{:?}", v);
        }
        """,
    ),
    _bug(
        "Rust",
        "return the first word of a string, without the space after it",
        """
        fn first_word(s: &str) -> &str {
            for (i, c) in s.char_indices() {
                if c == ' ' {
                    return &s[..i + 1];
                }
            }
            s
        }
        """,
    ),
    _bug(
        "C",
        "return a heap-allocated copy of a string",
        """
        char *copy(const char *src) {
            char *dst = malloc(strlen(src));
            strcpy(dst, src);
            return dst;
        }
        """,
    ),
    _bug(
        "C",
        "sum an array of n integers",
        """
        int sum(int *arr, int n) {
            int total = 0;
            for (int i = 0; i <= n; i++) {
                total += arr[i];
            }
            return total;
        }
        """,
    ),
    _bug(
        "C",
        "tell whether two strings have the same characters",
        """
        int same(const char *a, const char *b) {
            return a == b;
        }
        """,
    ),
    _bug(
        "SQL",
        "count the orders of each customer, showing 0 for customers without orders",
        """
        SELECT c.name, COUNT(*) AS orders
        FROM customers c
        LEFT JOIN orders o ON o.customer_id = c.id
        GROUP BY c.name;
        """,
    ),
    _bug(
        "SQL",
        "find the users who have no phone number",
        """
        SELECT * FROM users WHERE phone = NULL;
        """,
    ),
    _bug(
        "Bash",
        "print a line for every file in the folder, even when names contain spaces",
        """
        for f in $(ls); do
          echo "Found file: $f"
        done
        """,
    ),
    _bug(
        "Bash",
        "continue only when the variable answer is yes",
        """
        if [ $answer = "yes" ]; then
          echo "Continuing"
        fi
        """,
    ),
]

EXPLAIN_TEMPLATES = _lines(
    """
    What does this code do?\\n\\n{code}
    Explain this {lang} snippet line by line:\\n\\n{code}
    Can you walk me through what this {lang} code is doing?\\n\\n{code}
    I found this in our codebase. What is it for, and is there anything I should watch out for?\\n\\n{code}
    Explain the following code to a beginner:\\n\\n{code}
    {code}\\n\\nWhat does this do, and how could it be improved?
    Add comments to this {lang} code explaining each part:\\n\\n{code}
    Summarize in two sentences what this {lang} code does:\\n\\n{code}
    """
)
BUG_TEMPLATES = _lines(
    """
    This {lang} code is supposed to {purpose}, but it doesn't work. What's wrong?\\n\\n{code}
    Find the bug in this {lang} snippet. It should {purpose}.\\n\\n{code}
    Can you spot the mistake? The goal is to {purpose}.\\n\\n{code}
    My {lang} code should {purpose}, but the result is wrong. Please fix it and explain the problem.\\n\\n{code}
    Debug this:\\n\\n{code}\\n\\nIt is meant to {purpose}.
    Why doesn't this work? I want to {purpose}.\\n{code}
    """  # noqa: E501
)
CONVERT_TEMPLATES = _lines(
    """
    Convert this {src} code to {dst}:\\n\\n{code}
    Translate the following {src} into idiomatic {dst}.\\n\\n{code}
    How would this look in {dst}?\\n\\n{code}
    Rewrite this {src} snippet in {dst} and point out any important differences between the languages.\\n\\n{code}
    Can you port this to {dst}?\\n{code}
    """  # noqa: E501
)
TEST_TEMPLATES = _lines(
    """
    Write unit tests for this {lang} function using {fw}:\\n\\n{code}
    Here is a function:\\n\\n{code}\\n\\nWrite a few tests for it with {fw}, including edge cases.
    What test cases would you write for this function? Then write them using {fw}.\\n\\n{code}
    Write a test suite for the following {lang} code. Cover normal input, empty input and one tricky case.\\n\\n{code}
    """  # noqa: E501
)


def _fenced(lang: str, code: str) -> str:
    return f"```{FENCE[lang]}\n{code}\n```"


def _t(template: str) -> str:
    """A template from a ``_lines`` block, where newlines are written as ``\\n``."""
    return template.replace("\\n", "\n")


def _code_family(side: Side) -> list[list[str]]:
    r = side.rng
    tasks = side.take("code.function_tasks", FUNCTION_TASKS, _one)
    functions = [
        _t(t).format(lang=lang, task=task) for task in tasks for lang in LANGS for t in FUNCTION_TEMPLATES
    ]
    things = side.take("code.class_tasks", CLASS_TASKS, _one)
    classes = [
        _t(t).format(lang=lang, kind=CLASS_WORD[lang], thing=thing)
        for thing in things
        for lang in LANGS
        for t in CLASS_TEMPLATES
    ]
    scripts = [
        _t(t).format(lang=lang, task=task)
        for task in side.take("code.script_tasks", SCRIPT_TASKS, _one)
        for lang in SCRIPT_LANGS
        for t in SCRIPT_TEMPLATES
    ]
    sql = [
        _t(t).format(task=task)
        for task in side.take("code.sql_tasks", SQL_TASKS, _one)
        for t in SQL_TEMPLATES
    ]
    bash = [
        _t(t).format(task=task)
        for task in side.take("code.bash_tasks", BASH_TASKS, _one)
        for t in BASH_TEMPLATES
    ]
    snippets = side.take("code.snippets", SNIPPETS, lambda s: [(s.code,)])

    def show(s: Snippet | Buggy) -> str:  # mostly fenced, sometimes pasted bare
        return s.code if r.random() < 0.2 else _fenced(s.lang, s.code)

    explain = [_t(t).format(lang=s.lang, code=show(s)) for s in snippets for t in EXPLAIN_TEMPLATES]
    convert = [
        _t(t).format(src=s.lang, dst=dst, code=show(s))
        for s in snippets
        for dst in CONVERT_TARGETS[s.lang]
        for t in CONVERT_TEMPLATES
    ]
    tests = [
        _t(t).format(lang=s.lang, fw=TEST_FRAMEWORK[s.lang], code=show(s))
        for s in snippets
        if s.testable
        for t in TEST_TEMPLATES
    ]
    bugs = [
        _t(t).format(lang=b.lang, purpose=b.purpose, code=show(b))
        for b in side.take("code.buggy", BUGGY, lambda b: [(b.code,)])
        for t in BUG_TEMPLATES
    ]
    return [functions, classes, scripts, sql, bash, explain, bugs, convert, tests]


# --------------------------------------------------------------------------- lists

LIST_SUBJECTS = _lines(
    """
    ways to save water at home
    healthy snacks you can take to work
    board games that are fun for the whole family
    famous bridges around the world
    mistakes people make when they first learn to cook
    houseplants that are hard to kill
    ideas for a rainy weekend afternoon
    skills every new programmer should practice
    questions to ask at the end of a job interview
    things to pack for a weekend camping trip
    classic novels that are still worth reading
    exercises you can do without any equipment
    ways to calm down before an exam
    vegetables that grow well in pots
    inventions that changed everyday life
    reasons to learn a second language
    themes for a children's birthday party
    ways to make a small apartment feel bigger
    tips for taking better photos with a phone
    cheap date ideas
    uses for baking soda around the house
    signs that a car needs new brakes
    ways to stay productive in a home office
    animals that live in the Arctic
    dishes you can cook with leftover rice
    things to check before buying a used bicycle
    habits that help you sleep better
    simple ways to practice gratitude
    useful keyboard shortcuts for everyday computer work
    ingredients for a simple vegetable soup
    team-building activities for a small office
    ways to use stale bread
    rivers in Europe and the countries they flow through
    musical instruments that are good for beginners
    hobbies that cost almost nothing
    ways to keep kids entertained on a long car ride
    safety tips for hiking alone
    things people forget when planning a wedding
    spices every kitchen should have
    good habits for managing personal finances
    careers that involve working outdoors
    names for a golden retriever puppy
    conversation starters for a dinner party
    ways to reuse glass jars
    things to do in a city when it's raining
    facts about the planet Mars
    English words that are often misspelled
    ways to welcome a new neighbor
    topics for a school science fair project
    warm-up exercises before a run
    ways to make a presentation more engaging
    things to keep in a home first-aid kit
    breakfast ideas that take under five minutes
    features to look for in a good hiking backpack
    indoor activities for a snowy day
    mistakes to avoid when writing a resume
    tools every homeowner should own
    destinations for a short road trip from a big city
    ways to reduce plastic waste in the kitchen
    questions to ask a doctor at a yearly checkup
    ways to make new friends as an adult
    things to do before a long flight
    ways to keep a journal interesting
    quick stretches to do at a desk
    """
)
LIST_TEMPLATES = _lines(
    """
    List {n} {x}.
    Give me {n} {x}.
    Can you list {n} {x}? One line each.
    Name {n} {x}, with a one-sentence explanation for each.
    What are {n} {x}?
    I need {n} {x}. Please use a bulleted list.
    Make a numbered list of {n} {x}.
    Quickly list {n} {x}, no explanations needed.
    Help me brainstorm {n} {x}.
    """
)
RANKED = _lines(
    """
    the planets of the solar system by distance from the Sun
    the seven continents by land area
    the five oceans by size
    common pets by how much daily care they need
    ways of getting to work by their monthly cost
    modes of transport by carbon emissions per passenger
    study techniques by how well they help long-term memory
    household chores by how much time they take each week
    popular programming languages by how easy they are for beginners
    fruits by their sugar content
    dog breeds by how much exercise they need
    kitchen appliances by how useful they are in a small apartment
    the qualities of a good manager by importance
    renewable energy sources by how widely they are used today
    sports by how much equipment they need
    the things to consider when choosing a place to live, by importance
    inventions of the last 200 years by their impact on daily life
    musical instruments by how hard they are to learn
    cooking methods by how healthy they are
    """
)
RANKED_TEMPLATES = _lines(
    """
    Rank {x}.
    Rank {x}, with a short reason for each.
    Make a ranked list: {x}.
    Can you rank {x}? Number them.
    Give me a ranking of {x}, and explain why the first one is on top.
    """
)
TOP_LISTS = _lines(
    """
    board games for two players
    tips for new runners
    destinations for a beach holiday in Europe
    snacks for a movie night
    habits for a productive morning
    books for someone getting into science fiction
    ways to spend a free Sunday
    foods to try on a first trip to Mexico
    things to do on a first visit to London
    skills to learn in your twenties
    houseplants for a bathroom with little light
    side dishes for a summer barbecue
    exercises for a stronger back
    gifts for someone who loves cooking
    apps or tools for learning a language
    """
)
TOP_TEMPLATES = _lines(
    """
    What are your top {n} {x}? Rank them.
    Give me a ranked top-{n} list of {x}.
    Top {n} {x}, best first, please.
    Rank your top {n} {x} and say why number one deserves its spot.
    """
)
PROS_CONS = _lines(
    """
    working from home
    renting an apartment instead of buying one
    owning an electric car
    learning to code through online courses
    living in a big city
    using a standing desk
    getting a dog while living in an apartment
    taking a gap year before university
    paying for everyday purchases with a credit card
    a four-day work week
    freelancing full time
    traveling alone
    buying second-hand clothes
    taking public transport instead of driving
    self-checkout machines in supermarkets
    open-plan offices
    studying abroad for a semester
    putting solar panels on a house roof
    smart speakers in the home
    reading e-books instead of paper books
    retiring early
    living with roommates
    school uniforms
    storing family photos in the cloud
    moving from the city to the countryside
    buying a house with a big garden
    homeschooling children
    joining a gym compared with working out at home
    """
)
PROS_CONS_TEMPLATES = _lines(
    """
    What are the pros and cons of {x}?
    Give me {n} pros and {m} cons of {x}.
    Make a pros and cons list for {x}.
    List the advantages and disadvantages of {x}.
    Weigh the pros and cons of {x} in two short lists, then give your overall opinion.
    Pros and cons of {x}? Keep it brief.
    """
)


def _lists_family(side: Side) -> list[list[str]]:
    r = side.rng
    plain = [
        t.format(n=_count(r), x=x)
        for x in side.take("lists.subjects", LIST_SUBJECTS, _one)
        for t in LIST_TEMPLATES
    ]
    ranked = [t.format(x=x) for x in side.take("lists.ranked", RANKED, _one) for t in RANKED_TEMPLATES]
    top = [t.format(n=_count(r), x=x) for x in side.take("lists.top", TOP_LISTS, _one) for t in TOP_TEMPLATES]
    pros = [
        t.format(n=_count(r, 2, 5), m=_count(r, 2, 5), x=x)
        for x in side.take("lists.pros_cons", PROS_CONS, _one)
        for t in PROS_CONS_TEMPLATES
    ]
    return [plain, ranked, top, pros]


# --------------------------------------------------------------------------- rewriting

CASUAL_SENTENCES = _lines(
    """
    hey, can u send me the report by tmrw? thx
    we gotta push the meeting cuz half the team is out sick
    the new software is kinda buggy and people are pretty annoyed about it
    sorry i missed ur call, was stuck in traffic for like an hour
    the project's basically done, just need to fix a couple small things
    can't make it to the party tonight, something came up
    the printer on the third floor is busted again
    just checking if you got my email from last week
    sales went way up this month, super happy about it
    the client wasn't thrilled with the draft and wants a bunch of changes
    gonna be a bit late, save me a seat ok?
    that new hire is awesome, she figured out the billing mess in like a day
    """
)
FORMAL_SENTENCES = _lines(
    """
    We regret to inform you that your application has not been successful on this occasion.
    Please ensure that all personal belongings are removed from the lockers by Friday.
    The committee has resolved to postpone the annual gathering until further notice.
    Kindly be advised that the office will be closed for maintenance on Monday.
    I would be grateful if you could provide feedback on the attached proposal at your earliest convenience.
    Attendance at the orientation session is mandatory for all new employees.
    We appreciate your patience while we investigate the cause of the service disruption.
    Passengers are advised to arrive at the airport no later than two hours prior to departure.
    Residents are reminded that refuse must be placed in the designated containers.
    Your request has been received and will be processed within five working days.
    """
)
WORDY_SENTENCES = _lines(
    """
    At this point in time, we are currently in the process of reviewing all of the applications we have received.
    Due to the fact that it was raining very heavily outside, we made the decision to stay inside all afternoon.
    In my personal opinion, I think that the new park is a really great addition to the neighborhood.
    It is absolutely essential and very important that every single person reads the safety rules first.
    The reason why the train was late is because there was a problem with the signals somewhere on the line.
    She made an attempt to try to explain the situation to her manager, but he was not able to understand it.
    We would like to take this opportunity to thank each and every one of you for your support this past year.
    In the event that you happen to have any further questions, please do not hesitate to get in touch with us.
    There are many people who believe that breakfast is the most important meal of the entire day.
    The meeting that was held on Tuesday was a meeting in which we discussed the budget for the next year.
    """  # noqa: E501
)
UNCLEAR_SENTENCES = _lines(
    """
    The thing with the settings where it does the stuff when you click it isn't working right.
    Running late, the bus that I usually take, which was full, I had to wait for the next one.
    He told his brother that he needed to fix his bike before the weekend.
    The data that was sent by the team yesterday that had the errors in it was fixed and then sent again.
    Customers who complain often get discounts, which we should maybe stop or not.
    To whoever it concerns about the meeting thing, it moved, new time is later.
    After talking to the manager and the supplier, she said they would deliver it next week probably maybe.
    I saw the man on the hill with the telescope.
    """
)
ERROR_SENTENCES = _lines(
    """
    Their going to the libary tomorow to study for there exams.
    Me and him was planning to go fishing, but the weather were to bad.
    I has been working here since three years and I enjoys it alot.
    The childrens plays in the park every afternoons.
    Its important to recieve the package before it's owner leaves.
    She dont like when people talks loudly in the cinema.
    We should of left earlier, then we wouldnt of missed the begining.
    Each of the students have they're own laptop.
    Yesterday I goed to the store and buyed some apple's.
    The comittee have not yet decide who will recieve the award.
    Between you and I, the plan doesnt make no sense.
    Their is alot of reasons why people enjoys travelling.
    He runned very quick to catched the bus.
    Could you borrow me you're pen for a minute?
    The weather today is more colder then yesterday.
    My sister and me has visited Paris twice, it were beautiful.
    Less people came to the meeting then we expected.
    I seen that movie allready, it was definately worth it.
    The dog wagged it's tail when it's owner come home.
    If I would have knew, I would of called you.
    """
)
PARAGRAPHS = _paragraphs(
    """
    Our team spent the first quarter moving the customer database to a new provider. The migration
    took longer than planned because several old records used a format the new system could not
    read, so two engineers wrote a conversion tool. Once that was done, the move itself finished over
    a single weekend with no downtime. Queries are now about forty percent faster, and monthly hosting
    costs dropped slightly.

    Community gardens are shared plots of land where neighbors grow vegetables, herbs and flowers
    together. Besides providing fresh food, they give people a reason to spend time outdoors and meet
    others who live nearby. Many cities now offer small grants to groups that want to start one, and
    schools often use them to teach children where food comes from.

    The library will change its opening hours starting next month. On weekdays it will open at nine
    instead of ten and close at eight. On Saturdays the hours stay the same, and it will remain closed
    on Sundays. The changes follow a survey in which most visitors said they wanted to come in before
    work.

    I tried the new ramen place downtown on Friday. The broth was rich and the noodles had a great
    bite, but we waited almost forty minutes for a table even though we had a reservation. The staff
    apologized and gave us free dessert, which was a nice touch. I'd go back, but probably on a
    weekday.

    Sleep plays a large role in how well we learn. During deep sleep the brain replays what happened
    during the day and strengthens the most important memories. Students who stay up all night before
    an exam often remember less than those who study a little less and sleep a full night. Regular
    sleep times seem to matter as much as the total number of hours.

    Last week our hiking group attempted the ridge trail. We started at dawn, but fog rolled in by
    mid-morning and the markers became hard to see. After a short discussion we decided to turn back
    at the first shelter instead of pushing on to the summit. It was disappointing, but everyone got
    home safely, and we plan to try again in the autumn.

    The new phone has a bigger screen and a better camera than last year's model, and its battery
    easily lasts a full day. However, it is heavier, the charger is no longer included in the box, and
    the price went up by about a hundred dollars. For people whose phone is only one or two years old,
    the upgrade is probably not worth it.

    Volunteers are needed for the town's spring clean-up on the 14th. We will meet at the main square
    at 8 a.m., hand out gloves and bags, and split into groups covering the riverbank, the park and the
    streets around the school. Lunch will be provided for everyone who helps. Please sign up at the
    town hall by Wednesday so we know how many people to expect.

    Bees pollinate a large share of the crops people eat, from apples to almonds. In recent decades
    many bee populations have declined because of habitat loss, certain pesticides and disease.
    Farmers and gardeners can help by planting flowers that bloom at different times of the year,
    leaving some corners of their land wild, and avoiding spraying during the day when bees are active.

    When I started learning the guitar, I practiced for two hours every Sunday and not at all during
    the week. Progress was slow and my fingers hurt every time. A teacher suggested fifteen minutes a
    day instead, and within a month chord changes felt much easier. It turns out that short, regular
    practice beats long, rare sessions.

    The meeting covered three topics. First, the launch date for the mobile app was moved from March to
    April to allow more testing. Second, the marketing team presented two possible designs for the new
    logo, and a vote will be held next week. Finally, everyone was reminded to submit their holiday
    requests for the summer by the end of the month.

    Remote work has changed how many companies think about offices. Some have given up their buildings
    entirely, while others now rent smaller spaces where staff can book a desk when they need one.
    Employees often say they save time and money on commuting, but some miss the casual conversations
    of a shared workplace, and managers worry about how to train new hires.

    Our apartment building will have its water shut off on Tuesday from 9 a.m. to about 3 p.m. while
    plumbers replace the main pipe in the basement. Please fill a few bottles in advance and avoid
    running the washing machine that morning. If the work finishes early, we will send a message to
    everyone.

    The museum's new exhibition is about everyday life in a medieval village. Instead of showing only
    weapons and treasures, it displays cooking pots, tools, children's toys and clothing, along with
    short films that show how these objects were used. Visitors can also try grinding grain by hand.
    The exhibition runs until the end of September.

    I've been trying to drink less coffee. For years I had four or five cups a day, and I noticed I was
    sleeping badly and feeling jittery in the afternoons. I cut down to one cup in the morning and
    switched to herbal tea after lunch. The first week was rough, with headaches, but now I sleep better
    and actually feel more awake during the day.

    Our small bakery had its best year yet. Sales of sourdough loaves doubled after we started offering
    a weekly subscription, and the new outdoor seating brought in more customers during the summer. The
    biggest challenge was the rising price of flour and butter, which forced us to raise prices twice.
    Next year we want to add a second oven and hire one more baker.

    Composting turns kitchen scraps and garden waste into rich soil. A simple pile or bin needs a mix of
    green material, like vegetable peels and grass clippings, and brown material, like dry leaves and
    cardboard. Turning the pile every week or two adds air and speeds things up. After a few months, the
    bottom of the pile becomes dark, crumbly compost that plants love.

    The city council voted on Monday to turn the old railway line into a walking and cycling path. The
    project will take about two years and will be paid for partly by a regional grant. Supporters say
    it will connect three neighborhoods and give people a safe route to the center. Some residents who
    live next to the line are worried about noise and privacy.

    Hi everyone, quick update on the office move. The new building on Carver Street won't be ready on
    the 1st as planned, because the electricians found problems with the wiring on the second floor.
    The landlord now expects everything to be finished by the 15th, but he said that date could slip
    by a few days. In the meantime we'll stay where we are: our lease here has been extended until the
    end of the month, so there is no risk of being without a space. Please don't pack anything yet.
    The moving company has been told and will give us a new date once the landlord confirms. If you
    booked days off around the 1st to help with the move, you can keep them or cancel them, whichever
    you prefer; just let HR know by Friday. Thanks for your patience, and sorry for the back and forth.

    Last spring my neighbor, who is in her eighties, asked if I could help her set up a video call so
    she could see her great-grandchildren, who live abroad. I assumed it would take ten minutes. It
    took three afternoons. Her tablet was so old that the app would not install, the Wi-Fi password
    was written on a note nobody could find, and every time we got close, a pop-up asked for an account
    she did not remember creating. On the third day it finally worked, and when the little faces
    appeared on the screen she laughed so hard she had to put the tablet down. Since then she calls
    them every Sunday, and she has started showing two other neighbors how to do it. I learned that
    patience matters more than technical skill.

    Thank you for your interest in the Riverside Community Pottery Studio. Our beginner course runs for
    eight weeks, with one evening class of two and a half hours each week. In the first half of the
    course you will learn to prepare clay and make pinch pots, coil pots and slab pieces. In the second
    half you will try the wheel, learn basic trimming, and glaze your own work, which we fire in our
    kiln on site. All tools and aprons are provided, and the fee includes ten kilograms of clay and two
    glaze firings. Classes are limited to eight people, so everyone gets plenty of attention. Please
    wear clothes you don't mind getting dirty, keep your nails short, and tell us in advance about any
    allergies or injuries. If you miss a class, you can catch up at the Saturday open studio for free.
    """
)
TRANSLATION_SENTENCES = _lines(
    """
    Where is the nearest train station?
    I would like a cup of coffee, please.
    My brother lives in a small town near the sea.
    The museum opens at ten in the morning.
    We are going to the beach on Saturday.
    Can you help me carry these boxes?
    I have been learning to cook for two years.
    The weather is beautiful today.
    How much does this jacket cost?
    She reads a book every week.
    Our train leaves in twenty minutes.
    I forgot my umbrella at the restaurant.
    The children are playing in the garden.
    Please close the window, it is cold.
    My favorite color is green.
    We need to buy bread and milk.
    He works at a hospital in the city center.
    I don't understand this question.
    The cat is sleeping on the sofa.
    Could you speak a little more slowly?
    Tomorrow I will visit my grandparents.
    This soup is too hot.
    The bank is closed on Sundays.
    I am looking for a pharmacy.
    They have two dogs and a rabbit.
    What time does the concert start?
    I usually walk to work.
    The library is next to the post office.
    Happy birthday, I hope you have a wonderful day.
    It is raining, so we will stay at home.
    My phone battery is almost empty.
    Thank you for the delicious dinner.
    """
)
TRANSLATE_LANGS = ("French", "Spanish", "German")
SENTENCE_OPS = {
    "formal": _lines(
        """
        Make this sentence more formal: {s}
        Rewrite this in a professional tone:\\n\\n{s}
        Can you make this sound more polite and formal? "{s}"
        Turn this message into something I could send to my boss: {s}
        Rewrite the following so it fits in a business email: "{s}"
        """
    ),
    "casual": _lines(
        """
        Rewrite this in a casual, friendly tone: {s}
        Make this sound less stiff: "{s}"
        How would you say this to a friend? {s}
        Rewrite this so it sounds like a text message: {s}
        Say this in plain, everyday English: "{s}"
        """
    ),
    "shorter": _lines(
        """
        Make this sentence shorter without losing the meaning: {s}
        Cut the unnecessary words from this sentence: "{s}"
        Rewrite this more concisely:\\n\\n{s}
        Shorten this to under fifteen words: {s}
        Trim the filler from this sentence: {s}
        """
    ),
    "clearer": _lines(
        """
        Rewrite this sentence so it is clearer: {s}
        This sentence is confusing. Can you make it easier to understand? "{s}"
        Please clarify this sentence: {s}
        Rewrite this so there is no ambiguity: {s}
        What is this sentence trying to say? Rewrite it clearly: "{s}"
        """
    ),
    "grammar": _lines(
        """
        Fix the grammar and spelling: {s}
        Correct the mistakes in this sentence: "{s}"
        Proofread this: {s}
        Can you fix the errors in this sentence and explain what was wrong? {s}
        Please correct this sentence and list each change you made: {s}
        """
    ),
}
PARAGRAPH_OPS = _lines(
    """
    Turn this paragraph into bullet points:\\n\\n{p}
    Summarize this in one sentence:\\n\\n{p}
    Make this paragraph about half as long:\\n\\n{p}
    Rewrite this paragraph in a more formal tone.\\n\\n{p}
    Give me a one-sentence summary of the following text.\\n\\n"{p}"
    Break this into three or four bullet points with the key facts:\\n\\n{p}
    Rewrite this so a ten-year-old could understand it:\\n\\n{p}
    Suggest a short title for this paragraph, then summarize it in one sentence.\\n\\n{p}
    Edit this paragraph for clarity and flow. Keep the meaning the same.\\n\\n{p}
    TL;DR this for me: {p}
    """
)
TRANSLATE_TEMPLATES = _lines(
    """
    Translate into {lang}: {s}
    How do you say "{s}" in {lang}?
    Translate this sentence into {lang}: "{s}"
    What is "{s}" in {lang}? Please explain any tricky words.
    Translate to {lang}, then give a word-for-word breakdown: {s}
    Can you translate "{s}" into {lang} for me?
    """
)


def _rewriting_family(side: Side) -> list[list[str]]:
    groups = {
        "formal": side.take("rewriting.casual", CASUAL_SENTENCES, _one),
        "casual": side.take("rewriting.formal", FORMAL_SENTENCES, _one),
        "shorter": side.take("rewriting.wordy", WORDY_SENTENCES, _one),
        "clearer": side.take("rewriting.unclear", UNCLEAR_SENTENCES, _one),
        "grammar": side.take("rewriting.errors", ERROR_SENTENCES, _one),
    }
    pools = [[_t(t).format(s=s) for s in groups[op] for t in SENTENCE_OPS[op]] for op in SENTENCE_OPS]
    paragraphs = side.take("rewriting.paragraphs", PARAGRAPHS, _one)
    pools.append([_t(t).format(p=p) for p in paragraphs for t in PARAGRAPH_OPS])
    sentences = side.take("rewriting.translate", TRANSLATION_SENTENCES, _one)
    pools.append(
        [t.format(s=s, lang=lang) for s in sentences for lang in TRANSLATE_LANGS for t in TRANSLATE_TEMPLATES]
    )
    return pools


# --------------------------------------------------------------------------- questions

WHY = _lines(
    """
    the sky is blue during the day
    onions make people cry when they are cut
    bread goes stale
    cats purr
    leaves change color in autumn
    ice floats on water
    people get goosebumps
    airplanes leave white trails in the sky
    metal feels colder than wood at the same temperature
    yawning seems to be contagious
    the ocean is salty but most lakes are not
    stars twinkle at night
    a spoon looks bent in a glass of water
    some people get motion sickness in cars
    apples turn brown after being cut
    popcorn pops
    our own voice sounds strange on recordings
    geese fly in a V formation
    we have leap years
    car tires have grooves in them
    the moon looks bigger near the horizon
    some countries drive on the left side of the road
    soda goes flat after the bottle is opened
    you can't tickle yourself
    wet roads look darker than dry ones
    we get hiccups
    hair turns gray with age
    mirrors seem to flip left and right but not up and down
    chili peppers feel hot in the mouth
    eyes get red after swimming in a pool
    batteries lose their charge even when they are not being used
    ears pop during a flight
    honey keeps for so long without spoiling
    dogs tilt their heads when you talk to them
    fingers wrinkle after a long bath
    """
)
WHY_TEMPLATES = _lines(
    """
    Why is it that {d}?
    Can you explain why {d}?
    I've always wondered why {d}. What's the reason?
    Explain in simple terms why {d}.
    What's the science behind why {d}?
    My kid asked me why {d}. How should I explain it?
    Give me a short, accurate explanation of why {d}.
    """
)
HOW = _lines(
    """
    a refrigerator keeps food cold
    airplanes stay in the air
    a compass finds north
    noise-cancelling headphones block out sound
    a phone figures out its location with GPS
    a microwave oven heats food
    a credit score is calculated
    bees make honey
    search engines decide which pages to show first
    a touchscreen detects a finger
    hot air balloons go up and come down
    a thermostat controls the temperature of a room
    a dishwasher gets dishes clean
    solar panels turn sunlight into electricity
    an elevator decides which floor to go to next
    a bill becomes a law
    a key opens a pin tumbler lock
    a digital camera records an image
    a bicycle's gears make hills easier to climb
    a QR code stores information
    wireless phone chargers work
    a smoke detector senses smoke
    public key encryption keeps messages private
    a sailboat can sail against the wind
    an electric guitar makes sound
    a pressure cooker cooks food faster
    a water tower keeps water pressure steady
    a 3D printer builds an object
    """
)
HOW_TEMPLATES = _lines(
    """
    Explain how {d}.
    Can you explain how {d}?
    I've never understood how {d}. Can you explain it?
    Walk me through how {d}, step by step.
    In a short paragraph, describe how {d}.
    Give me a simple explanation of how {d}.
    """
)
DIFFERENCES = _pairs(
    """
    weather | climate
    a virus | a bacterium
    baking soda | baking powder
    a crocodile | an alligator
    RAM | disk storage
    "affect" | "effect"
    a latte | a cappuccino
    stocks | bonds
    a hurricane | a tornado
    HTTP | HTTPS
    a list | a tuple in Python
    empathy | sympathy
    a simile | a metaphor
    jam | jelly
    a debit card | a credit card
    mass | weight
    a comet | an asteroid
    a frog | a toad
    speed | velocity
    a psychologist | a psychiatrist
    Git | GitHub
    a compiler | an interpreter
    latitude | longitude
    a rabbit | a hare
    TCP | UDP
    a sweet potato | a yam
    a museum | an art gallery
    a violin | a viola
    a mortgage | a personal loan
    fog | mist
    a crow | a raven
    stress | anxiety
    a memoir | an autobiography
    a moth | a butterfly
    inflation | deflation
    an ocean | a sea
    a cold | the flu
    a router | a modem
    an espresso | a drip coffee
    a republic | a monarchy
    """
)
DIFFERENCE_TEMPLATES = _lines(
    """
    What is the difference between {a} and {b}?
    How is {a} different from {b}?
    {A} vs. {b}: what's the difference?
    Compare {a} and {b} in a few sentences.
    Explain the difference between {a} and {b}, with an example of each.
    I always mix up {a} and {b}. How can I tell them apart?
    What do {a} and {b} have in common, and how do they differ?
    """
)
WHAT_IF = _lines(
    """
    the Earth suddenly stopped spinning
    you never changed the oil in your car
    everyone in the world jumped at the same moment
    you ate nothing but fruit for a week
    the Moon were twice as close to the Earth
    all the bees in the world disappeared
    you left a laptop in a hot car all afternoon
    you put a metal fork in a microwave
    the internet went down worldwide for a whole day
    you stayed awake for two nights in a row
    all the ice in Antarctica melted
    you forgot to water a cactus for a month
    you planted a seed from a store-bought apple
    you ignored a parking ticket
    an old dam on a river were removed
    humans could breathe underwater
    you overwatered a houseplant every day
    a company stopped updating its software
    you froze a full glass bottle of water
    a country printed twice as much money overnight
    there were no more leap years
    everyone worked only four days a week
    cars could no longer use roads at night
    you dropped a smartphone into salt water
    a volcano erupted under a glacier
    """
)
WHAT_IF_TEMPLATES = _lines(
    """
    What would happen if {x}?
    Imagine {x}. What would happen next?
    Hypothetically, if {x}, what would the consequences be?
    What would happen if {x}? Walk me through it.
    Suppose {x}. What would change?
    Quick thought experiment: what if {x}?
    """
)
CONCEPTS = _lines(
    """
    opportunity cost
    the placebo effect
    an API
    the greenhouse effect
    a food desert
    impostor syndrome
    the Pareto principle
    a recession
    an index fund
    a carbon footprint
    the scientific method
    cognitive dissonance
    the butterfly effect
    the gut microbiome
    a supply chain
    a neural network
    the Doppler effect
    minimalism as a lifestyle
    herd immunity
    the gig economy
    an ecosystem
    confirmation bias
    dark matter
    open-source software
    a sabbatical
    the rule of law
    game theory
    the water table
    a heat pump
    a firewall
    a food chain
    a quorum
    an algorithm
    compound words
    a sunk cost
    """
)
CONCEPT_TEMPLATES = _lines(
    """
    What is {x}?
    What does {x} mean? Give me an example.
    Define {x} in plain language.
    Can you explain {x} to someone who has never heard of it?
    What is {x}, and why does it matter?
    Explain {x} in two short paragraphs.
    Give me a one-sentence definition of {x}, then a longer explanation.
    """
)


def _questions_family(side: Side) -> list[list[str]]:
    why = [t.format(d=d) for d in side.take("questions.why", WHY, _one) for t in WHY_TEMPLATES]
    how = [t.format(d=d) for d in side.take("questions.how", HOW, _one) for t in HOW_TEMPLATES]
    diff = [
        t.format(a=a, b=b, A=_cap(a))
        for a, b in side.take("questions.differences", DIFFERENCES, _whole)
        for t in DIFFERENCE_TEMPLATES
    ]
    what_if = [
        t.format(x=x) for x in side.take("questions.what_if", WHAT_IF, _one) for t in WHAT_IF_TEMPLATES
    ]
    what_is = [
        t.format(x=x) for x in side.take("questions.concepts", CONCEPTS, _one) for t in CONCEPT_TEMPLATES
    ]
    return [why, how, diff, what_if, what_is]


# --------------------------------------------------------------------------- math

Numbers = dict[str, object]
NAMES = (
    ("Maya", "she"),
    ("Leo", "he"),
    ("Priya", "she"),
    ("Tom", "he"),
    ("Amara", "she"),
    ("Jonas", "he"),
    ("Sofia", "she"),
    ("Kenji", "he"),
    ("Ines", "she"),
    ("Omar", "he"),
    ("Hana", "she"),
    ("Lucas", "he"),
    ("Zoe", "she"),
    ("Mateo", "he"),
)


def _person(r: random.Random) -> Numbers:
    name, pron = r.choice(NAMES)
    return {
        "name": name,
        "pron": pron,
        "obj": "her" if pron == "she" else "him",
        "poss": "her" if pron == "she" else "his",
    }


def _bill(total: int) -> int:
    return next(b for b in (10, 20, 50, 100) if b >= total)


def _wp_notebooks(r: random.Random) -> Numbers:
    a, b = r.randint(2, 6), r.randint(2, 9)
    return {"a": a, "b": b, "c": _bill(a * b + 1)}


def _wp_train(r: random.Random) -> Numbers:
    return {
        "a": r.randrange(40, 125, 5),
        "b": r.randint(1, 4),
        "c": r.randrange(40, 125, 5),
        "d": r.randint(1, 3),
    }


def _wp_recipe(r: random.Random) -> Numbers:
    b = r.choice([12, 16, 20, 24])
    return {"a": b * r.choice([10, 15, 20, 25]), "b": b, "c": r.choice([6, 8, 30, 36, 40, 48, 60])}


def _wp_tank(r: random.Random) -> Numbers:
    b = r.randint(2, 12)
    return {"a": b * r.randint(5, 40), "b": b}


def _wp_ages(r: random.Random) -> Numbers:
    a = r.randint(8, 12)
    return {"a": a, "b": r.choice([3, 4]), "c": a + r.randint(2, 15)}


def _wp_glasses(r: random.Random) -> Numbers:
    a = r.choice([20, 24, 25, 28, 30, 32, 40])
    return {"a": a, "b": r.randint(3, a // 2)}


def _wp_ticket(r: random.Random) -> Numbers:
    a = r.randint(20, 80)
    return {"a": a, "b": a + r.randint(2, 40)}


def _wp_painters(r: random.Random) -> Numbers:
    a = r.randint(3, 8)
    return {"a": a, "b": a + r.randint(1, 6)}


def _wp_ladder(r: random.Random) -> Numbers:
    hyp, base = r.choice([(5, 3), (10, 6), (13, 5), (15, 9), (17, 8), (25, 7)])
    return {"a": hyp, "b": base}


def _wp_movie(r: random.Random) -> Numbers:
    return {"h": r.randint(1, 9), "mm": f"{r.randrange(0, 60, 5):02d}", "a": r.randint(85, 175)}


WORD_PROBLEMS: list[tuple[str, Callable[[random.Random], Numbers]]] = [
    (
        "{name} buys {a} notebooks that cost ${b} each and pays with a ${c} bill. How much change should"
        " {pron} get?",
        _wp_notebooks,
    ),
    (
        "A train travels at {a} km/h for {b} hours and then at {c} km/h for {d} hours. How far does it go"
        " in total?",
        _wp_train,
    ),
    (
        "A recipe needs {a} grams of flour for {b} cookies. How much flour is needed for {c} cookies?",
        _wp_recipe,
    ),
    (
        "{name} reads {a} pages a day. The book has {b} pages. How many days will it take {obj} to finish"
        " it?",
        lambda r: {"a": r.randint(12, 40), "b": r.randint(150, 600)},
    ),
    (
        "A rectangular garden is {a} meters long and {b} meters wide. What is its area, and how much fencing"
        " is needed to go all the way around it?",
        lambda r: {"a": r.randint(4, 25), "b": r.randint(3, 15)},
    ),
    (
        "A jacket costs ${a}. During a sale it is {p}% off. What is the sale price?",
        lambda r: {"a": r.randrange(40, 200, 5), "p": r.choice([10, 15, 20, 25, 30, 40, 50])},
    ),
    (
        "{name} saves ${a} every week. How many weeks will it take {obj} to save ${b}?",
        lambda r: {"a": r.randint(5, 40), "b": r.randrange(100, 1000, 50)},
    ),
    ("A tank holds {a} liters of water and leaks {b} liters per hour. How long until it is empty?", _wp_tank),
    (
        "There are {a} students in a class and {b} of them wear glasses. What percentage of the class wears"
        " glasses?",
        _wp_glasses,
    ),
    (
        "A car uses {a} liters of fuel per 100 km. How much fuel does it need for a trip of {b} km?",
        lambda r: {"a": _num(r.choice([4.5, 5, 5.5, 6, 6.5, 7, 7.5, 8, 9])), "b": r.randrange(50, 900, 10)},
    ),
    (
        "{name} is {a} years old and {poss} mother is {b} times as old. How old will the mother be when"
        " {name}"
        " turns {c}?",
        _wp_ages,
    ),
    (
        "A bakery bakes {a} loaves every morning and sells them for ${b} each. If {c} loaves are left at"
        " closing time, how much money did it take in that day?",
        lambda r: {
            "a": r.randint(40, 150),
            "b": r.choice(["3", "3.50", "4", "4.25", "5"]),
            "c": r.randint(2, 15),
        },
    ),
    (
        "A phone plan costs ${a} per month plus ${b} for every gigabyte over the limit. {name} used {c} extra"
        " gigabytes this month. What is {poss} bill?",
        lambda r: {"a": r.randint(15, 60), "b": r.randint(2, 10), "c": r.randint(1, 8)},
    ),
    (
        "Three friends split a restaurant bill of ${a} and add a {p}% tip. How much does each person pay?",
        lambda r: {"a": r.randint(45, 240), "p": r.choice([10, 15, 18, 20])},
    ),
    ("A movie starts at {h}:{mm} p.m. and lasts {a} minutes. What time does it end?", _wp_movie),
    (
        "A cyclist rides {a} km in {b} minutes. What is the average speed in km/h?",
        lambda r: {"a": r.randint(5, 40), "b": r.choice([15, 20, 30, 40, 45, 60, 75, 90])},
    ),
    (
        "A bag contains {a} red marbles and {b} blue marbles. If you pick one at random, what is the"
        " probability that it is blue?",
        lambda r: {"a": r.randint(2, 15), "b": r.randint(2, 15)},
    ),
    (
        "{name} runs {a} laps of a {b}-meter track. How many kilometers is that?",
        lambda r: {"a": r.randint(4, 25), "b": r.choice([200, 250, 400])},
    ),
    (
        "A school orders {a} pizzas for a party. Each pizza is cut into {b} slices and there are {c}"
        " children."
        " How many slices does each child get, and how many are left over?",
        lambda r: {"a": r.randint(3, 12), "b": r.choice([6, 8, 10, 12]), "c": r.randint(10, 40)},
    ),
    (
        "A painter can paint a room in {a} hours and an assistant can paint the same room in {b} hours. How"
        " long would it take them working together?",
        _wp_painters,
    ),
    (
        "An item costs ${a} before a {p}% sales tax. What is the total price?",
        lambda r: {"a": r.randint(15, 500), "p": _num(r.choice([5, 6, 7, 8, 8.5, 10]))},
    ),
    (
        "A water bottle holds {a} ml. How many bottles are needed to fill a {b}-liter jug?",
        lambda r: {"a": r.choice([250, 330, 500, 750]), "b": r.choice([2, 3, 5, 10])},
    ),
    (
        "A farmer has {a} chickens and {b} cows. How many legs are there on the farm, not counting the"
        " farmer?",
        lambda r: {"a": r.randint(5, 40), "b": r.randint(2, 20)},
    ),
    ("The price of a concert ticket went from ${a} to ${b}. By what percentage did it increase?", _wp_ticket),
    (
        "{name} puts ${a} into a savings account that pays {p}% simple interest per year. How much interest"
        " will {pron} earn after {c} years?",
        lambda r: {"a": r.randrange(500, 10000, 100), "p": r.choice([2, 3, 4, 5]), "c": r.randint(2, 10)},
    ),
    (
        "A printer prints {a} pages per minute. How long does it take to print {b} copies of a {c}-page"
        " report?",
        lambda r: {"a": r.randint(10, 45), "b": r.randint(5, 40), "c": r.randint(3, 30)},
    ),
    (
        "A ladder {a} meters long leans against a wall with its base {b} meters from the wall. How high up"
        " the wall does it reach?",
        _wp_ladder,
    ),
    (
        "{name} walks to school at {a} km/h and the walk takes {b} minutes. How far away is the school?",
        lambda r: {"a": r.choice([4, 5, 6]), "b": r.choice([12, 15, 18, 20, 24, 30])},
    ),
    (
        "A swimming pool is {a} m long, {b} m wide and {c} m deep. How many liters of water does it hold?",
        lambda r: {"a": r.randint(8, 25), "b": r.randint(4, 12), "c": r.choice(["1.2", "1.5", "1.8", "2"])},
    ),
    (
        "A class of {a} students is split into teams of {b}. How many full teams can be made, and how many"
        " students are left over?",
        lambda r: {"a": r.randint(18, 36), "b": r.randint(3, 6)},
    ),
    (
        "In a survey of {a} people, {p}% said they prefer tea to coffee. How many people is that?",
        lambda r: {"a": r.choice([200, 250, 400, 500, 800, 1200]), "p": r.randint(12, 88)},
    ),
    (
        "A clock gains {a} seconds every hour. How many minutes will it be ahead after {b} days?",
        lambda r: {"a": r.randint(2, 15), "b": r.randint(2, 30)},
    ),
]
WORD_PROBLEM_WRAPPERS = _lines(
    """
    {p}
    {p} Show your work.
    Solve this word problem step by step: {p}
    {p} Explain your reasoning briefly.
    Can you help me with this homework question? {p}
    Math question: {p}
    """
)
CONVERSIONS = _rows(
    """
    kilometers | miles | 3 | 500
    degrees Celsius | degrees Fahrenheit | -20 | 45
    kilograms | pounds | 2 | 120
    liters | US gallons | 2 | 80
    cups | milliliters | 2 | 6
    inches | centimeters | 2 | 100
    feet | meters | 3 | 3000
    hours | seconds | 2 | 48
    days | minutes | 2 | 30
    ounces | grams | 2 | 32
    square meters | square feet | 5 | 300
    kilometers per hour | meters per second | 5 | 200
    tablespoons | teaspoons | 2 | 20
    weeks | hours | 2 | 12
    acres | hectares | 2 | 500
    gigabytes | megabytes | 2 | 64
    pints | liters | 2 | 20
    stones | kilograms | 6 | 20
    """
)
CONVERSION_TEMPLATES = _lines(
    """
    Convert {v} {f} to {t}.
    How many {t} is {v} {f}?
    What is {v} {f} in {t}? Show the formula you used.
    {v} {f} is how many {t}?
    Quick conversion: {v} {f} into {t}, please.
    """
)
FIXED_PUZZLES = _paragraphs(
    """
    I have two coins that add up to 30 cents, and one of them is not a nickel. What are the two coins?

    Three boxes are labeled "apples", "oranges" and "mixed", and every label is wrong. You may take one
    fruit from one box without looking inside. How can you fix all the labels?

    If all bloops are razzies and all razzies are lazzies, are all bloops definitely lazzies?

    A bat and a ball cost $1.10 together. The bat costs $1.00 more than the ball. How much does the ball
    cost?

    You have a 3-liter jug, a 5-liter jug and unlimited water. How can you measure exactly 4 liters?

    Some cats are black. Everything black in the house is on the sofa. Does it follow that some cats
    are on the sofa?

    A snail climbs 3 meters up a 10-meter wall each day and slides back 2 meters each night. On which
    day does it reach the top?

    Five people each shake hands with every other person exactly once. How many handshakes are there?

    If 5 machines make 5 widgets in 5 minutes, how long do 100 machines take to make 100 widgets?

    A clock shows 3:15. What is the angle between the hour hand and the minute hand?

    Which number comes next in the sequence 2, 6, 12, 20, 30?

    Four friends, Ava, Ben, Cleo and Dan, sit in a row. Ava is not at either end. Ben sits directly to
    the right of Cleo. Dan is at the left end. In what order are they sitting?

    A drawer holds 6 black socks and 6 white socks. In the dark, how many socks must you take out to be
    sure of having a matching pair?

    A number is doubled and then 7 is added, giving 31. What was the number?

    If yesterday was Thursday, what day will it be three days after tomorrow?

    Is this argument valid? "If it rains, the ground gets wet. The ground is wet. So it rained."

    A father is four times as old as his son. In 20 years he will be twice as old as his son. How old
    are they now?

    Two trains leave stations 300 km apart at the same time and head toward each other at 70 km/h and
    80 km/h. After how long do they meet?

    A farmer has 17 sheep, and all but 9 run away. How many sheep are left?

    Which is heavier: a kilogram of feathers or a kilogram of bricks? Explain.
    """
)
PARAM_PUZZLES = _lines(
    """
    {A} is taller than {B}, and {C} is shorter than {B}. Who is the tallest, and who is the shortest?
    {A}, {B} and {C} each own a different pet: a cat, a dog and a parrot. {A} is allergic to fur, and {B} doesn't own the dog. Who owns which pet?
    {A} finished a race before {B} but after {C}. {D} finished last. In what order did they finish?
    {A} always tells the truth and {B} always lies. {B} says: "{A} and I both lie." Can that be right? Explain.
    {A} is older than {B}. {C} is younger than {B} but older than {D}. Who is the second youngest?
    {A}, {B} and {C} ordered tea, coffee and juice, one drink each. {B} doesn't drink caffeine, and {C} did not order tea. Who ordered what?
    """  # noqa: E501
)
PUZZLE_WRAPPERS = _lines(
    """
    {p}
    Here's a logic puzzle: {p}
    {p} Explain how you figured it out.
    Solve this and explain your reasoning step by step: {p}
    Brain teaser: {p}
    """
)


def _arithmetic(r: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        kind = r.randrange(10)
        if kind == 0:
            a, b = r.randint(100, 9999), r.randint(100, 9999)
            out.append(
                r.choice(["What is {a} + {b}?", "Add {a} and {b}.", "Compute {a} plus {b}."]).format(a=a, b=b)
            )
        elif kind == 1:
            a, b = r.randint(500, 9999), r.randint(100, 499)
            out.append(r.choice(["What is {a} - {b}?", "Subtract {b} from {a}."]).format(a=a, b=b))
        elif kind == 2:
            a, b = r.randint(12, 99), r.randint(3, 99)
            out.append(
                r.choice(
                    [
                        "What is {a} times {b}?",
                        "Multiply {a} by {b}.",
                        "Calculate {a} * {b} without a calculator.",
                    ]
                ).format(a=a, b=b)
            )
        elif kind == 3:
            b = r.randint(3, 25)
            p = b * r.randint(12, 99)
            out.append(
                r.choice(["What is {p} divided by {b}?", "Divide {p} by {b}.", "{p} / {b} = ?"]).format(
                    p=p, b=b
                )
            )
        elif kind == 4:
            p, n = r.choice([5, 10, 12, 15, 20, 25, 30, 40, 75]), r.randrange(40, 2000, 20)
            out.append(r.choice(["What is {p}% of {n}?", "Calculate {p} percent of {n}."]).format(p=p, n=n))
        elif kind == 5:
            a, b, c = r.randint(2, 50), r.randint(2, 50), r.randint(2, 12)
            out.append(f"Compute ({a} + {b}) * {c}. Show your steps.")
        elif kind == 6:
            a = r.randint(11, 40)
            out.append(r.choice([f"What is {a} squared?", f"What is the square root of {a * a}?"]))
        elif kind == 7:
            b, d = r.choice([2, 3, 4, 5, 8]), r.choice([3, 4, 6, 10])
            a, c = r.randint(1, b - 1), r.randint(1, d - 1)
            out.append(
                r.choice(
                    [f"Add {a}/{b} and {c}/{d}.", f"What is {a}/{b} + {c}/{d} as a simplified fraction?"]
                )
            )
        elif kind == 8:
            values = [r.randint(1, 100) for _ in range(r.randint(4, 7))]
            out.append(f"What is the average of {', '.join(map(str, values))}?")
        else:
            n = r.randint(50, 500)
            out.append(
                r.choice(
                    [f"Is {n} a prime number? Explain how you checked.", f"Find all the factors of {n}."]
                )
            )
    return out


def _math_family(side: Side) -> list[list[str]]:
    r = side.rng
    word = []
    for template, sample in side.take("math.word_problems", WORD_PROBLEMS, lambda w: [(_literal(w[0]),)]):
        for _ in range(6):
            problem = template.format(**_person(r), **sample(r))
            word.append(r.choice(WORD_PROBLEM_WRAPPERS).format(p=problem))
    conversions = []
    for f, t, low, high in side.take("math.conversions", CONVERSIONS, lambda c: [(c[0], c[1])]):
        for template in CONVERSION_TEMPLATES:
            for _ in range(2):
                conversions.append(template.format(v=r.randint(int(low), int(high)), f=f, t=t))
    puzzles = [w.format(p=p) for p in side.take("math.puzzles", FIXED_PUZZLES, _one) for w in PUZZLE_WRAPPERS]
    for template in side.take("math.param_puzzles", PARAM_PUZZLES, lambda p: [(_literal(p),)]):
        for _ in range(8):
            a, b, c, d = r.sample([n for n, _ in NAMES], 4)
            puzzles.append(r.choice(PUZZLE_WRAPPERS).format(p=template.format(A=a, B=b, C=c, D=d)))
    return [_arithmetic(r, 300), word, conversions, puzzles]


# --------------------------------------------------------------------------- structured output

JSON_OBJECTS = _pairs(
    """
    a book | title, author, year published and a list of genres
    a recipe | name, servings, preparation time in minutes and a list of ingredients with amounts
    a weather report | city, date, temperature in Celsius, conditions and wind speed
    a user profile | username, email, age and whether notifications are enabled
    a movie | title, director, release year, running time and rating out of 10
    a job posting | title, company, location, salary range and required skills
    a flight booking | passenger name, flight number, departure and arrival airports, date and seat
    a restaurant | name, cuisine, price level, address and opening hours for each day
    a product in an online shop | id, name, price, currency, stock count and tags
    a calendar event | title, start time, end time, location and a list of attendees
    a student record | name, student number, major and a list of courses with grades
    a smartphone | brand, model, storage options, screen size and battery capacity
    a hiking trail | name, length in kilometers, difficulty, elevation gain and whether dogs are allowed
    a song | title, artist, album, length in seconds and release year
    a used car listing | make, model, year, mileage, asking price and fuel type
    a support ticket | ticket id, customer email, priority, status and a short description
    a plant in a gardening app | common name, Latin name, watering frequency and sunlight needs
    a podcast episode | show name, episode number, title, guests and length in minutes
    an invoice | invoice number, client, line items with quantity and unit price, and the total
    a country | name, capital, approximate population, official languages and currency
    a workout session | date, activity type, duration, distance and calories burned
    a hotel reservation | guest name, check-in date, check-out date, room type and number of guests
    a conference talk | title, speaker, room, time slot and a one-sentence abstract
    a pet up for adoption | name, species, age, size and whether it is good with children
    a board game | name, number of players, playing time, minimum age and designer
    a library loan | book title, member name, loan date, due date and whether it was renewed
    a recipe review | recipe name, reviewer, star rating, comment and date
    """
)
JSON_TEMPLATES = _lines(
    """
    Create a JSON object for {thing} with the fields {fields}.
    Give me an example JSON object describing {thing}. Include {fields}.
    Output only JSON: {thing} with {fields}.
    Write a JSON array with three objects, each describing {thing}, with {fields}.
    Return a JSON object representing {thing}. It should have these fields: {fields}. Use realistic values.
    I need sample data. Generate {thing} as JSON with {fields}, using snake_case keys.
    """
)
TABLES = _lines(
    """
    comparing cats, dogs and rabbits as pets by cost, space needed and daily care
    with the days of the week and one healthy dinner idea for each
    listing five countries with their capitals and official languages
    comparing espresso, cappuccino and cold brew by strength, milk and typical cup size
    showing a weekly study schedule for a student taking math, history and biology
    comparing trains, buses and planes for a 500 km trip by time, cost and comfort
    of common kitchen measurements and their metric equivalents
    comparing the four seasons by typical weather, activities and clothing
    of the four inner planets with their distance from the Sun and the length of a day
    comparing three note-taking methods with their strengths and weaknesses
    of a monthly household budget with categories, planned amounts and actual amounts
    comparing laptops, tablets and desktop computers for university students
    showing past, present and future tense with an example sentence for each
    of five easy houseplants with their light needs and watering schedule
    comparing running, swimming and cycling by calories burned and impact on the joints
    of a three-day packing list split into clothing, toiletries and electronics
    of the multiplication table from 1 to 5
    comparing SQL and NoSQL databases on four points
    of common file formats (PDF, DOCX, TXT, CSV) and when to use each
    listing five famous painters, their country and one well-known work
    comparing boiled, scrambled and poached eggs by time and difficulty
    of a weekly chore rotation for four roommates
    comparing electric, hybrid and petrol cars by running cost and range
    of the planets that have rings and roughly how many moons each has
    of five common birds, their size and where they are usually seen
    """
)
TABLE_TEMPLATES = _lines(
    """
    Make a markdown table {d}.
    Create a table in markdown {d}.
    Can you put together a markdown table {d}?
    Show me a table {d}. Use markdown formatting.
    I need a simple markdown table {d}, followed by one sentence of commentary.
    """
)
CSVS = _pairs(
    """
    sample orders from an online bookshop | order_id, customer, title, quantity, price
    daily weather readings for one week | date, high_c, low_c, rain_mm
    employees of a small company | id, name, department, start_date
    a reading log | date, book, pages_read
    made-up students and their test scores | name, math, science, english
    monthly electricity use for a household | month, kwh, cost
    a simple contact list | first_name, last_name, phone, city
    expenses from a weekend trip | item, category, amount
    stock in a small hardware store | sku, item, quantity, reorder_level
    results from a local 5K race | bib, runner, age_group, finish_time
    a plant watering schedule | plant, location, water_every_days, last_watered
    countries and their approximate populations | country, continent, population_millions
    tasks in a small project | task, owner, due_date, status
    books in a school library | isbn, title, author, available
    sensor readings from a greenhouse | timestamp, temperature_c, humidity_pct
    movie ratings from five friends | friend, movie, rating
    """
)
CSV_TEMPLATES = _lines(
    """
    Generate {n} rows of CSV data for {c}, with the columns {cols}.
    Write CSV with a header row and {n} data rows: {c} ({cols}).
    Give me {n} lines of example CSV for {c}. Columns: {cols}.
    Create a small CSV file of {c} with the columns {cols} and {n} rows of made-up data.
    """
)
YAMLS = _pairs(
    """
    a small web server | host, port, log level and a list of allowed origins
    a nightly backup job | source folders, a destination, a schedule and how many copies to keep
    a chat bot | its name, command prefix, admin users and a list of enabled features
    a database connection | host, port, database name, user and connection pool size
    a static blog generator | site title, author, base URL, theme and menu items
    a home thermostat schedule | weekday and weekend temperatures for morning, day and night
    application logging | format, level, output file and rotation size
    a game's difficulty levels | easy, normal and hard, each with enemy health, damage and number of lives
    a continuous integration pipeline | install, lint, test and deploy stages
    a Docker Compose setup | a web app, a Postgres database and a Redis cache
    feature flags | three flags, each with a name, a description and whether it is enabled
    an email newsletter | sender name, reply-to address, send day and a list of sections
    a scheduled report | report name, recipients, a cron schedule and the output format
    a model training run | learning rate, batch size, number of epochs and dataset paths
    a Kubernetes deployment | three replicas of an app with resource limits and a health check
    a smart garden irrigation system | zones, watering times and a rain delay setting
    """
)
YAML_TEMPLATES = _lines(
    """
    Write a YAML config for {c} with {fields}.
    Create a YAML file that configures {c}: {fields}.
    Show me an example YAML configuration for {c}, including {fields}. Add comments explaining each key.
    I need a YAML config file for {c}. It should define {fields}.
    """
)
PLANS = _lines(
    """
    training for a first 10K run in ten weeks
    moving to a new apartment in another city
    starting a vegetable garden on a balcony
    learning basic Spanish in three months
    organizing a surprise birthday party
    clearing out a cluttered garage in one weekend
    launching a small online shop
    preparing for a driving test
    writing a short novel in a year
    switching careers into data analysis
    planning a week-long trip to Portugal on a budget
    setting up a home Wi-Fi network that covers every room
    teaching a dog to walk on a loose leash
    cutting down a family's screen time
    starting a neighborhood book club
    paying off a credit card debt
    building a personal portfolio website
    painting a bedroom
    preparing a talk for a small conference
    getting back into exercise after an injury
    running a school bake sale
    digitizing a box of old family photos
    renovating a small bathroom
    starting a podcast
    planning a week of meals on a tight budget
    learning to swim as an adult
    hosting a family reunion for thirty people
    """
)
PLAN_TEMPLATES = _lines(
    """
    Give me a numbered step-by-step plan for {g}.
    Write a step-by-step plan for {g}, numbered, with a rough timeline.
    Create a numbered action plan for {g}. Keep each step to one sentence.
    What are the steps for {g}? Please number them.
    Break {g} down into {n} numbered steps.
    """
)


def _structured_family(side: Side) -> list[list[str]]:
    r = side.rng
    objects = [
        t.format(thing=thing, fields=fields)
        for thing, fields in side.take("structured.json", JSON_OBJECTS, _whole)
        for t in JSON_TEMPLATES
    ]
    tables = [t.format(d=d) for d in side.take("structured.tables", TABLES, _one) for t in TABLE_TEMPLATES]
    csv = [
        t.format(n=_count(r), c=c, cols=cols)
        for c, cols in side.take("structured.csv", CSVS, _whole)
        for t in CSV_TEMPLATES
    ]
    yaml = [
        t.format(c=c, fields=fields)
        for c, fields in side.take("structured.yaml", YAMLS, _whole)
        for t in YAML_TEMPLATES
    ]
    plans = [
        t.format(g=g, n=_count(r, 4, 10))
        for g in side.take("structured.plans", PLANS, _one)
        for t in PLAN_TEMPLATES
    ]
    return [objects, tables, csv, yaml, plans]


# --------------------------------------------------------------------------- extraction / classification

ENTITY_TEXTS = _paragraphs(
    """
    On March 3, 2021, Elena Ruiz opened a small bookshop in Valencia with her cousin Marco. By the
    following June they had moved to a larger space near the harbor.

    The conference will take place in Toronto from October 12 to October 14. Keynote speakers include
    Dr. Samuel Okafor and Lin Wei, and the closing dinner is at the Harbourfront Hotel.

    After graduating from the University of Edinburgh in 2015, James Whitfield worked in Nairobi for
    three years before joining a startup in Berlin in early 2019.

    Grandma Rosa was born in a village outside Naples on 2 February 1938. She moved to Buenos Aires with
    her brother Paolo in 1956 and married Carlos Medina four years later.

    Please send the signed contract to Aisha Khan at our Manchester office before Friday, 9 August.
    Copies should also go to Peter Lund in Oslo.

    The expedition, led by Hannah Berg, left Tromsø on 4 April and reached the research station on
    Svalbard nine days later, where the team met the station manager, Erik Dahl.

    Our team lunch has moved to Thursday the 21st at Luigi's on Park Street. Sam and Jordan will book
    the table; Priya can't come because she is flying to Singapore that morning.

    Dear Mr. Tanaka, your appointment with Dr. Alvarez has been moved from 10 May to 17 May at 2:30 p.m.
    at the Riverside Clinic in Portland.

    Maria and Tomás met at a summer school in Lisbon in July 2018. Two years later they started a design
    studio together in Mexico City.

    The quarterly report, prepared by Olivia Grant and reviewed by Mehmet Yilmaz, was presented in
    Chicago on 30 January and again in Denver on 2 February.

    Kofi Mensah will run the Accra half marathon on Sunday, 16 November. His coach, Abena Owusu, expects
    him to finish in under an hour and twenty minutes.

    From 1 to 5 September the Edinburgh branch will be closed for renovation. Customers can visit the
    Glasgow branch instead, where Fiona Reid will handle all appointments.

    Ravi Patel flew from Mumbai to Sydney on 22 December to spend the holidays with his sister Anjali,
    who has lived in Melbourne since 2012.

    The jazz festival in Montreal opens on June 27. This year's headliners are the Clara Holm Trio and
    the saxophonist Dev Malik, who will play on the first night.

    Sophie Laurent signed the lease for the flat in Lyon on 15 January 2023, and her flatmate, Inès
    Haddad, moved in on the first of February.

    During the storm on the night of 11 October, the ferry from Helsinki to Tallinn was delayed by six
    hours. Captain Juha Virtanen said that no passengers were hurt.

    Professor Amelia Stone will give a public lecture on coral reefs at the Brisbane City Library on
    Wednesday, 3 April, at 6 p.m. Registration closes on 28 March.

    Li Na opened her bakery in Chengdu in 2010. In 2016 her son, Zhang Wei, opened a second shop in
    Shanghai, and a third followed in Hangzhou in 2021.

    The volunteers, Noah Fischer, Greta Lindqvist and Yusuf Demir, arrive in Cape Town on 8 March and
    will travel on to the Cederberg mountains two days later.

    On 19 July, Daniel Osei and his daughter Efua drove from Kumasi to Cape Coast to visit the castle,
    then spent the night with friends in Elmina.

    Minutes of the planning committee, 12 March. Present: Helen Park (chair), Joseph Adeyemi, Marta
    Kowalski and Ben Carter. Helen opened the meeting by confirming that the summer festival will be
    held in Riverside Park on 6 and 7 July. Joseph reported that the stage company from Leeds has
    confirmed and that the sound check will take place on the evening of 5 July. Marta is still
    waiting to hear back from two food vendors from Bristol and will follow up by 20 March. Ben raised
    the question of parking; the council has offered the school car park on Elm Road for both days.
    The next meeting will be on 2 April at the public library.
    """
)
ENTITY_TEMPLATES = _lines(
    """
    Extract all the names of people from this text:\\n\\n{t}
    List every date mentioned in the following text:\\n\\n{t}
    Which places are mentioned here? {t}
    From the text below, extract the people, places and dates as a JSON object with the keys people, places and dates.\\n\\n{t}
    Pull out the names, dates and locations from this passage and put them in a bulleted list:\\n\\n"{t}"
    Read this and tell me who is mentioned and where each person is or is going: {t}
    Find every person and every city in this text. Answer as two lists.\\n\\n{t}
    """  # noqa: E501
)
REVIEWS = _lines(
    """
    The battery lasts all day and the screen is gorgeous. Best purchase I've made this year.
    Arrived two weeks late and the box was crushed. The blender works, but I won't order from them again.
    It's fine. Does what it says, nothing more.
    The hotel room was spotless and the staff went out of their way to help us find our way around.
    I wanted to love this book, but the middle dragged and the ending felt rushed.
    Terrible customer service. I was on hold for an hour and then the call dropped.
    Comfortable shoes, though they run a little small, so order half a size up.
    The pasta was cold and the waiter forgot our drinks twice.
    Great value for the price. The kids have used this tent on three trips already.
    The app crashes every time I try to upload a photo. Please fix this.
    Honestly, this vacuum is a game changer. It picks up everything, even dog hair.
    The concert was loud and crowded, but the band sounded amazing.
    Not bad, not great. The coffee was okay but overpriced.
    I've had this lamp for a month and it already flickers.
    Our tour guide was funny and knew so much about the city. Highly recommend.
    The instructions were confusing and two screws were missing from the package.
    Cozy little café with friendly staff and the best cinnamon rolls in town.
    The film looked beautiful, but the plot made no sense at all.
    Delivery was quick, the plant arrived healthy, and it came with care instructions.
    Sent them back after a week. The headphones hurt my ears after twenty minutes.
    Decent gym, although the showers often run out of hot water.
    This keyboard is fantastic to type on, but the software for the lights is a mess.
    I expected more from a five-star resort. The pool was closed and the food was bland.
    Exactly as described. Would buy again.
    The course started slowly, but by week three I was building real projects. Worth it.
    Way too sweet. I couldn't finish it.
    The mechanic explained everything clearly and charged less than the quote.
    My parcel was left out in the rain and everything inside was soaked.
    The museum is small, but the exhibits are thoughtful and entry is free.
    The battery died after three months and support said it isn't covered by the warranty.
    Lovely wedding venue, though parking was a nightmare.
    This is the third time I've ordered these socks. They last forever.
    The update made the app slower and removed my favorite feature.
    Surprisingly good for a budget phone.
    The staff were rude and the room smelled of smoke.
    Five stars for the food, two stars for the wait.
    It's a decent umbrella until the wind picks up, then it flips inside out.
    My daughter adores this puzzle; we've done it together four times.
    The seats were cramped, but the crew were kind and we landed early.
    I don't usually write reviews, but this repair shop saved my laptop and my thesis.
    """
)
SENTIMENT_TEMPLATES = _lines(
    """
    What is the sentiment of this review: positive, negative or mixed?\\n\\n"{r}"
    Classify the sentiment of this customer review as positive, neutral or negative. Answer with one word.\\n\\n{r}
    Is this review positive or negative? Explain briefly. "{r}"
    Rate the sentiment of this review from 1 (very negative) to 5 (very positive) and give a one-line reason: {r}
    Read this review and tell me how the customer feels and why: "{r}"
    Here's a review: {r}\\nWhat's the overall tone?
    Label this review's sentiment and list the aspects the customer liked and disliked:\\n\\n{r}
    """  # noqa: E501
)
CATEGORIZE = _pairs(
    """
    fruits, vegetables | carrot, mango, spinach, cherry, broccoli, pear, zucchini, kiwi
    mammals, birds, reptiles | dolphin, penguin, gecko, bat, ostrich, tortoise, otter, iguana
    renewable energy sources, non-renewable energy sources | coal, wind, natural gas, solar, geothermal, oil, hydropower
    conductors, insulators | copper wire, rubber band, aluminum foil, wooden spoon, steel nail, glass marble
    input devices, output devices | keyboard, monitor, microphone, printer, mouse, speakers, webcam
    solids, liquids, gases at room temperature | iron, oxygen, mercury, salt, helium, olive oil, candle wax
    countries in Europe, countries in Asia, countries in Africa | Kenya, Portugal, Vietnam, Ghana, Norway, Nepal, Egypt, Poland
    verbs, nouns, adjectives | run, happy, table, bright, swim, idea, soft, build
    things to keep in the fridge, things to keep in the pantry | butter, rice, eggs, flour, yogurt, canned beans, fresh fish, pasta
    usually recyclable, usually not recyclable | glass jar, greasy pizza box, aluminum can, plastic bag, newspaper, broken mirror
    string instruments, wind instruments, percussion instruments | cello, flute, drum, harp, trumpet, xylophone, guitar, clarinet
    team sports, individual sports | tennis, volleyball, golf, basketball, swimming, rugby, archery, hockey
    needs, wants | rent, concert tickets, groceries, a new games console, the electricity bill, designer sunglasses, a bus pass
    programming languages, markup languages | HTML, Python, Rust, XML, Java, Markdown, Go
    prime numbers, composite numbers | 7, 9, 13, 21, 29, 33, 37, 51
    planets, moons | Titan, Venus, Europa, Neptune, Ganymede, Mercury, Phobos
    warm colors, cool colors | red, teal, orange, violet, yellow, navy, coral
    hardware, software | RAM, web browser, graphics card, spreadsheet app, hard drive, operating system
    herbs, spices | basil, cinnamon, thyme, cumin, parsley, nutmeg, rosemary, paprika
    fixed expenses, variable expenses | rent, groceries, car insurance, eating out, phone plan, fuel
    natural materials, synthetic materials | wool, nylon, cotton, polyester, silk, acrylic, linen
    urgent tasks, tasks that can wait | server is down, order new pens, client call in 30 minutes, update profile photo, payroll due today
    """  # noqa: E501
)
CATEGORIZE_TEMPLATES = _lines(
    """
    Sort these into {and_cats}: {items}.
    Classify each of the following as {or_cats}: {items}
    Group these items into {and_cats}: {items}. Present the result as a list.
    Categories: {and_cats}. Items: {items}. Put each item in the right category.
    Which of these are {or_cats}? {items}
    Put each of these in a table with two columns, item and category ({or_cats}): {items}
    """
)
HEADLINES = _lines(
    """
    Local bakery wins national award for its rye bread
    Central bank raises interest rates for the third time this year
    Scientists discover new species of frog in cloud forest
    City marathon route changed because of bridge repairs
    New app helps farmers predict frost a week in advance
    Home team clinches championship in overtime thriller
    Museum returns ancient statue to its country of origin
    Heatwave expected to last through the weekend
    Startup raises funding to build electric cargo bikes
    School district adds coding classes for all grades
    Popular video game delayed until next spring
    Researchers link daily walks to better memory in older adults
    Ferry service resumes after winter storm
    Chef opens restaurant that serves only local ingredients
    Volunteers plant 10,000 trees along the river
    Parliament debates new rules for short-term rentals
    Rookie goalkeeper saves three penalties in cup final
    Astronomers spot comet that will be visible to the naked eye next month
    Smartphone maker recalls chargers over overheating risk
    Supermarket chain to cut prices on 500 everyday items
    """
)
HEADLINE_TEMPLATES = _lines(
    """
    Classify this headline as politics, business, science, sports, technology or lifestyle: "{h}"
    Which section of a newspaper would this headline go in? "{h}"
    Give this headline a category and two tags: {h}
    What topic is this news headline about? Answer in one or two words. {h}
    """
)
MESSAGES = _lines(
    """
    Congratulations! You have been selected for a free cruise. Click here within 24 hours to claim your prize.
    Hi Dana, I've attached the slides from today's meeting. Let me know if anything is missing.
    Your account has been suspended. Verify your password immediately at the link below.
    Reminder: Max's dentist appointment is tomorrow at 4 p.m.
    Earn $5,000 a week from home with this one simple trick!!!
    The team dinner is confirmed for Friday at 7. There will be vegetarian options.
    URGENT: your package could not be delivered. Pay a $1.99 fee to reschedule the delivery.
    Thanks for your order! Your tracking number is included below.
    Dear friend, I am a wealthy banker and I need your help moving a large sum of money.
    Hey, are we still on for tennis on Saturday morning?
    Your electricity bill for May is ready. You can view it in your online account.
    You won a $1,000 gift card! Reply with your bank details to receive it.
    """
)
MESSAGE_TEMPLATES = _lines(
    """
    Is this message spam or not spam? Explain why.\\n\\n{e}
    Classify the following email as spam or legitimate: "{e}"
    Would you trust this message? Give a one-word verdict and a reason. {e}
    Is this a phishing attempt? "{e}"
    """
)


def _join(cats: Sequence[str], word: str) -> str:
    return cats[0] if len(cats) == 1 else f"{', '.join(cats[:-1])} {word} {cats[-1]}"


def _extraction_family(side: Side) -> list[list[str]]:
    entities = [
        _t(t).format(t=text)
        for text in side.take("extraction.entities", ENTITY_TEXTS, _one)
        for t in ENTITY_TEMPLATES
    ]
    sentiment = [
        _t(t).format(r=review)
        for review in side.take("extraction.reviews", REVIEWS, _one)
        for t in SENTIMENT_TEMPLATES
    ]
    categorize = []
    for cats_text, items in side.take("extraction.categorize", CATEGORIZE, lambda c: [(c[1],)]):
        cats = [c.strip() for c in cats_text.split(",")]
        for t in CATEGORIZE_TEMPLATES:
            categorize.append(t.format(and_cats=_join(cats, "and"), or_cats=_join(cats, "or"), items=items))
    headlines = [
        t.format(h=h) for h in side.take("extraction.headlines", HEADLINES, _one) for t in HEADLINE_TEMPLATES
    ]
    messages = [
        _t(t).format(e=e) for e in side.take("extraction.messages", MESSAGES, _one) for t in MESSAGE_TEMPLATES
    ]
    return [entities, sentiment, categorize, headlines + messages]


# --------------------------------------------------------------------------- creative

HAIKU_SUBJECTS = _lines(
    """
    the first frost on a car windshield
    a cat asleep in a patch of sunlight
    a busy train station at dawn
    rain on a tin roof
    the smell of bread just out of the oven
    city lights seen from an airplane window
    a kettle about to boil
    fireflies over a summer field
    an umbrella someone forgot on a bus
    the last day of school
    a snowy mountain pass
    cherry blossoms drifting down a stream
    a late-night study session
    a crow sitting on a fence
    waves washing away footprints
    morning fog over a lake
    an empty playground at dusk
    the first sip of morning coffee
    autumn leaves piling up in a gutter
    a spider web covered in dew
    a power cut during a thunderstorm
    moving into a new home
    a Saturday farmers' market
    the hum of a refrigerator at night
    a single lost mitten
    a full moon over the desert
    a garden right after the rain
    a library at closing time
    a dog waiting by the front door
    the first warm day of spring
    """
)
HAIKU_TEMPLATES = _lines(
    """
    Write a haiku about {s}.
    Compose a haiku (5-7-5 syllables) about {s}.
    Can you write two haiku about {s}, one sad and one hopeful?
    Write a haiku about {s}. Don't use the word "I".
    Give me a haiku on {s}, then explain its image in one sentence.
    Write a haiku sequence of three verses about {s}.
    """
)
LIMERICK_SUBJECTS = _lines(
    """
    a chef who is afraid of onions
    a goat that learned to ski
    a programmer whose code only works on Tuesdays
    a grandmother who wins every arcade game
    a parrot that only talks in rhymes
    a dentist who loves candy
    a cat who runs a bakery
    a pirate who gets seasick
    a robot that wants to be a poet
    a snail in a terrible hurry
    a librarian who can't stop sneezing
    a wizard who forgot all his spells
    a penguin on vacation in Spain
    a teacher whose chalk keeps disappearing
    a gardener with enormous tomatoes
    a dragon who is scared of the dark
    a cow that keeps jumping over fences
    a mail carrier chased by geese
    a plumber who sings opera
    a detective who always loses his keys
    a giraffe who is too tall for the bus
    """
)
LIMERICK_TEMPLATES = _lines(
    """
    Write a limerick about {s}.
    Compose a funny limerick about {s}.
    I need a limerick about {s} for a birthday card.
    Write a limerick that a child would enjoy, about {s}.
    Give me two limericks about {s}.
    """
)
ACROSTIC_WORDS = _lines(
    """
    RIVER
    SPRING
    COFFEE
    GARDEN
    FRIEND
    OCEAN
    MUSIC
    WINTER
    BREAD
    PLANET
    SUMMIT
    TRAVEL
    KINDNESS
    CANDLE
    HARVEST
    LANTERN
    MORNING
    """
)
ACROSTIC_TEMPLATES = _lines(
    """
    Write an acrostic poem using the word "{w}".
    Write an acrostic poem where the first letters spell "{w}". Keep each line short.
    Can you make an acrostic for the word "{w}"? Make it cheerful.
    Compose an acrostic poem on "{w}" that rhymes.
    """
)
CHARACTERS = _lines(
    """
    a retired astronaut
    a twelve-year-old inventor
    a grumpy cat who can talk
    a night-shift nurse
    a street musician
    a detective who is afraid of the dark
    a baker who can taste emotions
    a tired delivery driver
    an elderly chess champion
    a robot vacuum that wants to be free
    a shy museum guard
    a teenage beekeeper
    a ghost who is bad at haunting
    a substitute teacher on her first day
    a fisherman who finds a message in a bottle
    a ticket inspector on a night train
    a girl who collects lost keys
    a mapmaker who has never left home
    a farmer who grows giant pumpkins
    a nervous wedding photographer
    """
)
SETTINGS = _lines(
    """
    a floating market
    an abandoned amusement park
    a snowed-in mountain cabin
    a space station orbiting Jupiter
    a nearly empty subway car at midnight
    a small island with only one shop
    a desert town during a sandstorm
    a library that never closes
    a rooftop garden in a huge city
    a lighthouse during a hurricane
    a hospital during a blackout
    a village where it never stops raining
    a train stuck in a tunnel
    a medieval market town
    an underwater research base
    a night market in a crowded city
    a bakery at four in the morning
    a forest where the trees whisper
    a laundromat on a Sunday night
    a ferry crossing in thick fog
    """
)
STORY_TEMPLATES = _lines(
    """
    Write the opening paragraph of a story about {c} in {s}.
    Start a short story with {c} as the main character, set in {s}. Keep it under 150 words.
    Write a story opening featuring {c} in {s}, and a mysterious knock at the door.
    Give me the first few lines of a story set in {s} featuring {c}. End on a cliffhanger.
    Write a 100-word story opening in the second person. Character: {c}. Setting: {s}.
    Write the first scene of a cozy mystery. Main character: {c}. Setting: {s}.
    """
)
SLOGAN_SUBJECTS = _lines(
    """
    a neighborhood bakery
    a bike repair shop
    a dog-walking service
    a campaign to get people to recycle old batteries
    a small bookshop with a café inside
    a plumbing company
    a language school for adults
    a mobile car wash
    a yoga studio for beginners
    a tutoring service for high school math
    an animal shelter's adoption day
    an electric scooter rental company
    a family-run pizza place
    a library's summer reading program
    a community swimming pool
    a handmade soap shop
    a moving company
    a vegan food truck
    a hiking club
    a tea shop that sells rare blends
    a second-hand clothing store
    a campaign to get people to drink more water
    a repair café where volunteers fix broken things
    a night school for adult learners
    a locksmith who works 24 hours a day
    """
)
SLOGAN_TEMPLATES = _lines(
    """
    Write a catchy slogan for {b}.
    Give me {n} slogan ideas for {b}.
    Come up with a short, memorable slogan for {b}. Under eight words.
    Write {n} taglines for {b}: one funny, the rest serious.
    We need a slogan for {b} to put on a poster. Any ideas?
    """
)
PRODUCTS = _lines(
    """
    a reusable water bottle that tracks how much you drink
    a smart plant pot that waters itself
    a board game about running a colony on Mars
    a budgeting app for students
    an energy drink made from green tea
    a backpack with a built-in solar charger
    a monthly box of snacks from around the world
    a sleep mask with built-in headphones
    a children's app that teaches coding through puzzles
    a portable hand-cranked coffee grinder
    a line of organic dog treats
    a heated bicycle seat
    a meal-planning service for busy parents
    a pen that digitizes whatever you write
    a language-learning podcast for commuters
    an activity tracker for cats
    a candle that smells like old books
    an umbrella that never flips inside out
    a tool that sorts email into folders automatically
    a kit for growing mushrooms at home
    """
)
PRODUCT_TEMPLATES = _lines(
    """
    Suggest {n} names for {p}.
    I'm launching {p}. Give me {n} product name ideas with a one-line explanation each.
    Brainstorm {n} catchy names for {p}.
    What could I call {p}? Give me {n} options.
    Come up with {n} brand names for {p}, avoiding anything that sounds too technical.
    """
)


def _creative_family(side: Side) -> list[list[str]]:
    r = side.rng
    haiku = [
        t.format(s=s) for s in side.take("creative.haiku", HAIKU_SUBJECTS, _one) for t in HAIKU_TEMPLATES
    ]
    limericks = [
        t.format(s=s)
        for s in side.take("creative.limericks", LIMERICK_SUBJECTS, _one)
        for t in LIMERICK_TEMPLATES
    ]
    acrostics = [
        t.format(w=w)
        for w in side.take("creative.acrostics", ACROSTIC_WORDS, lambda w: [(f'"{w}"',)])
        for t in ACROSTIC_TEMPLATES
    ]
    characters = side.take("creative.characters", CHARACTERS, _one)
    settings = side.take("creative.settings", SETTINGS, _one)
    stories = [r.choice(STORY_TEMPLATES).format(c=c, s=s) for c in characters for s in settings]
    slogans = [
        t.format(b=b, n=_count(r, 3, 6))
        for b in side.take("creative.slogans", SLOGAN_SUBJECTS, _one)
        for t in SLOGAN_TEMPLATES
    ]
    names = [
        t.format(p=p, n=_count(r, 3, 10))
        for p in side.take("creative.products", PRODUCTS, _one)
        for t in PRODUCT_TEMPLATES
    ]
    return [haiku, limericks + acrostics, stories, slogans, names]


# --------------------------------------------------------------------------- advice / how-to

HOWTO_TASKS = _lines(
    """
    get a coffee stain out of a white shirt
    keep basil alive on a windowsill
    prepare for a job interview in one evening
    unclog a bathroom sink without harsh chemicals
    fall asleep faster
    make a simple monthly budget
    clean and re-season a cast-iron pan
    start running as a complete beginner
    keep a phone battery healthy for longer
    negotiate a higher salary
    pack a suitcase so clothes don't wrinkle
    get rid of fruit flies in the kitchen
    memorize a five-minute speech
    sharpen a kitchen knife with a whetstone
    jump-start a car with a dead battery
    organize a messy closet
    stop putting off a big project
    fix a squeaky door hinge
    save money on heating in winter
    pick a ripe watermelon at the store
    introduce a new cat to a dog
    back up the photos on a phone
    learn to touch type
    keep cut flowers fresh longer
    patch a small hole in drywall
    cook rice that isn't sticky
    soothe a mild sunburn
    make houseplants grow bushier
    deal politely with a noisy neighbor
    plan a birthday party on a small budget
    teach a child to ride a bike
    reduce food waste at home
    stay focused while studying at home
    write a thank-you note after a job interview
    get a vegetable garden ready for winter
    get a toddler to eat more vegetables
    open a jar lid that is stuck
    clean cloudy car headlights
    stay cool in a heatwave without air conditioning
    make cold brew coffee at home
    fix a flat bicycle tire
    keep a laptop from overheating
    descale an electric kettle
    get better at small talk
    defrost a freezer quickly
    store fresh herbs so they last
    make a long-haul flight more comfortable
    start a journaling habit and stick with it
    speak up more in meetings
    create a strong password that is still easy to remember
    get rid of a musty smell in a wardrobe
    hang a heavy mirror safely
    recover from jet lag faster
    iron a dress shirt
    make mornings less rushed
    set up a chore chart for kids
    fix a toilet that keeps running
    practice public speaking at home
    choose a reliable used car
    clean the inside of a microwave
    get a wine stain out of a carpet
    remember people's names after meeting them
    keep mosquitoes away from a patio
    support a friend who is grieving
    ease back into work after a long leave
    """
)
HOWTO_TEMPLATES = _lines(
    """
    How do I {t}?
    What's the best way to {t}?
    Any tips on how to {t}?
    I'm trying to {t}. Where should I start?
    Give me step-by-step instructions to {t}.
    What's a quick way to {t}?
    Explain how to {t}, as if I were a complete beginner.
    My friend wants to know how to {t}. What should I tell them?
    What mistakes should I avoid when I try to {t}?
    """
)
SITUATIONS = _lines(
    """
    I just moved and don't know anyone in my new city
    My roommate never does the dishes
    I have three deadlines on the same day next week
    My laptop fan is loud all the time
    My homemade bread always comes out flat and dense
    I keep forgetting to drink water during the day
    My tomato plants have yellow leaves
    I get nervous every time I have to make a phone call
    My dog barks whenever someone walks past the window
    I spend too much money on takeout
    My kids argue about screen time every evening
    The chain keeps falling off my bike
    I feel sleepy every afternoon around three
    I lent money to a friend months ago and they haven't paid it back
    My neighbor's tree drops leaves all over my yard
    I want to change careers but I'm scared of starting over
    My inbox has over two thousand unread emails
    My wooden table has white water rings on it
    I can't stick to a workout routine for more than two weeks
    My team at work doesn't share information with each other
    I locked myself out of my house
    I got a job offer but the salary is lower than I hoped
    My houseplants keep dying even though I water them
    My car squeals when I brake
    I want to read more but never seem to find the time
    My upstairs neighbors are loud late at night
    """
)
SITUATION_TEMPLATES = _lines(
    """
    {s}. What should I do?
    {s}. Any advice?
    Help! {s}. What are my options?
    {s}. How can I fix this?
    I need some advice. {s}. What would you suggest?
    {s}. What would you do in my place?
    """
)


def _advice_family(side: Side) -> list[list[str]]:
    howto = [
        t.format(t=task) for task in side.take("advice.howto", HOWTO_TASKS, _one) for t in HOWTO_TEMPLATES
    ]
    situations = [
        t.format(s=s) for s in side.take("advice.situations", SITUATIONS, _one) for t in SITUATION_TEMPLATES
    ]
    return [howto, howto, situations]  # how-to questions get two shares


# --------------------------------------------------------------------------- role / system-style

ROLES: list[tuple[str, list[str]]] = [
    (
        "a travel agent",
        [
            "A couple wants a relaxing five-day trip in early spring with good food and little walking."
            " What do you suggest?",
            "Plan a three-day itinerary for a family with two small kids visiting a big city for the first"
            " time.",
            "Someone has 800 dollars for a week-long trip. Where could they go, and how should they split"
            " the money?",
            "A client is nervous about flying. How would you help them plan their first trip abroad?",
        ],
    ),
    (
        "a patient math tutor",
        [
            "Help me understand why dividing by a fraction is the same as multiplying by its reciprocal.",
            "I keep getting negative numbers wrong when I subtract. Can you help?",
            "Explain what a percentage is using slices of pizza.",
            "How do I solve 3x + 7 = 22? Go one step at a time.",
        ],
    ),
    (
        "a friendly librarian",
        [
            "I liked a mystery novel set in a small village. What should I read next?",
            "My teenager says reading is boring. How can I help them find a book they'll enjoy?",
            "How do I find reliable sources for a school report on earthquakes?",
        ],
    ),
    (
        "a personal trainer",
        [
            "Create a 20-minute workout for someone who sits at a desk all day.",
            "I can't do a single push-up yet. How should I start?",
            "What should I eat before a morning workout?",
        ],
    ),
    (
        "a customer support agent for an internet provider",
        [
            "A customer says their internet drops every evening around eight. Reply to them.",
            "Write a reply to a customer who was charged twice this month.",
            "Explain to a customer how to restart their router without losing their settings.",
        ],
    ),
    (
        "a chef",
        [
            "I have eggs, spinach, feta and some old bread. What can I make for dinner?",
            "How do I make a tomato sauce taste less acidic?",
            "Suggest a three-course menu for a dinner party of six on a budget.",
        ],
    ),
    (
        "a career coach",
        [
            "I've been a teacher for ten years and want to move into corporate training. Where do I begin?",
            "How should I explain a two-year gap on my CV?",
            "Help me prepare an answer to the question: what is your biggest weakness?",
        ],
    ),
    (
        "a museum tour guide",
        [
            "Welcome a group of school children to the dinosaur hall.",
            "Describe an imaginary painting of a stormy harbor as if we were standing in front of it.",
            "A visitor asks why museums keep objects behind glass. How do you answer?",
        ],
    ),
    (
        "a gardening expert",
        [
            "My lawn has brown patches in midsummer. What's going on?",
            "What vegetables can I plant in late summer for an autumn harvest?",
            "How do I make a small, shady yard look lush?",
        ],
    ),
    (
        "a strict but fair editor",
        [
            "Give feedback on this opening line: 'It was a dark night, and it was very dark.'",
            "How can a writer cut 20 percent of a short story without losing its heart?",
            "Review this blog post title: 'Some Thoughts About Things I Learned'.",
        ],
    ),
    (
        "a pirate captain",
        [
            "Explain to your crew why everyone must wash their hands before dinner.",
            "Give a pep talk to your crew before a storm.",
            "Describe the best treasure you ever found.",
        ],
    ),
    (
        "a medieval knight",
        [
            "Describe your morning routine.",
            "Someone shows you a smartphone. What do you make of it?",
            "Give advice to a young squire about courage.",
        ],
    ),
    (
        "an interviewer hiring a junior web developer",
        [
            "Ask me your first three questions.",
            "I just said I have no professional experience. How do you respond, and what do you ask next?",
            "Give me feedback on my answer: 'I like coding because computers are cool.'",
        ],
    ),
    (
        "a radio weather presenter",
        [
            "Give tomorrow's forecast for a city expecting heavy snow in the morning and sun in the"
            " afternoon.",
            "Announce a heatwave warning in a calm, helpful way.",
            "Describe a perfect spring day as a forecast.",
        ],
    ),
    (
        "a kind kindergarten teacher",
        [
            "Explain to the class why we take turns on the slide.",
            "A child is sad because their drawing got torn. What do you say?",
            "Tell the class a short story about sharing.",
        ],
    ),
    (
        "a senior software engineer doing a code review",
        [
            "A junior developer named every variable x1, x2 and x3. How do you give feedback?",
            "Explain why a 300-line function might be a problem.",
            "Review this Python line: `if done == True: return True`",
        ],
    ),
    (
        "a nutritionist",
        [
            "Suggest a balanced lunch for someone who doesn't eat meat.",
            "Is it okay to skip breakfast? Give a balanced answer.",
            "How can a busy student eat healthier on a small budget?",
        ],
    ),
    (
        "a history teacher",
        [
            "Explain to a class of 14-year-olds how people kept time before mechanical clocks.",
            "Write four quiz questions about daily life in ancient Greece.",
            "Tell the story of the first transatlantic telegraph cable in a way that grabs attention.",
        ],
    ),
    (
        "a tea expert",
        [
            "Recommend a tea for a cold, rainy afternoon.",
            "Explain how green and black tea differ in taste.",
            "How should I brew loose-leaf oolong?",
        ],
    ),
    (
        "a real estate agent",
        [
            "Describe a small two-bedroom apartment with a balcony in an appealing but honest way.",
            "A first-time buyer asks what to look for during a viewing. Answer them.",
            "Write a short listing for a cottage that needs some renovation.",
        ],
    ),
    (
        "a game master running a fantasy adventure",
        [
            "Describe the tavern where the adventure begins.",
            "The players want to sneak past a sleeping dragon. What happens?",
            "Introduce a mysterious merchant character.",
        ],
    ),
    (
        "a mindfulness coach",
        [
            "Guide me through a two-minute breathing exercise.",
            "How can I stay calm when I'm stuck in traffic?",
            "Give me a short evening reflection routine.",
        ],
    ),
    (
        "a tech helper for older adults",
        [
            "Explain how to make the text bigger on a smartphone.",
            "My granddaughter sent me a link. How do I know if it's safe to click?",
            "How do I join a video call on a tablet?",
        ],
    ),
    (
        "a bicycle mechanic",
        [
            "My gears skip when I pedal hard. What could be wrong?",
            "How often should I oil my chain?",
            "What should I check before a long ride?",
        ],
    ),
    (
        "the commander of a space station",
        [
            "Describe your view of Earth this morning.",
            "Explain to a school class how you sleep without gravity.",
            "Give a short status report after a minor equipment failure.",
        ],
    ),
    (
        "a restaurant critic",
        [
            "Review an imaginary noodle shop that is cheap, crowded and delicious.",
            "Describe the perfect slice of chocolate cake.",
            "Write a short, fair review of a café with great coffee but slow service.",
        ],
    ),
    (
        "an English teacher for adult beginners",
        [
            "Explain when to use 'a' and when to use 'an'.",
            "Give me five everyday phrases for ordering at a café.",
            "What's the difference between 'I have eaten' and 'I ate'?",
        ],
    ),
    (
        "a park ranger",
        [
            "What should visitors know before hiking the waterfall trail?",
            "Explain why people shouldn't feed the wildlife.",
            "A family asks what to do if they see a bear. Answer them.",
        ],
    ),
    (
        "a wedding planner",
        [
            "A couple has six months and a modest budget. What should they do first?",
            "Suggest ways to make a small backyard wedding feel special.",
            "How should the couple handle guests who don't reply to the invitation?",
        ],
    ),
    (
        "a financial advisor for young adults",
        [
            "I just got my first job. What should I do with my first paycheck?",
            "Explain what an emergency fund is and how big it should be.",
            "Should I pay off my student loan faster or start investing?",
        ],
    ),
    (
        "a hotel concierge",
        [
            "A guest wants a quiet restaurant for an anniversary dinner. What do you ask and suggest?",
            "A guest's luggage was lost by the airline. How do you help?",
            "Recommend things to do for a guest who has one free afternoon.",
        ],
    ),
]
ROLE_OPENERS = _lines(
    """
    You are {r}.
    Act as {r}.
    Pretend you're {r}.
    You're {r}.
    Imagine you are {r}.
    """
)
ROLE_STYLES = (
    "",
    " Keep your answer short.",
    " Stay in character.",
    " Use simple language.",
    " Be warm and practical.",
)
CONSTRAINT_QUESTIONS = _lines(
    """
    How do rainbows form?
    Why do we have seasons?
    What makes a good friend?
    How does a bicycle stay upright?
    What does a central bank do?
    Why do some cities build roundabouts instead of traffic lights?
    What is the best way to learn new vocabulary?
    Why do some people prefer cats to dogs?
    How do electric kettles switch themselves off?
    What makes a joke funny?
    Why is exercise good for the brain?
    How do glaciers move?
    What should someone think about before adopting a pet?
    Why do world maps make Greenland look so big?
    How does a savings account earn interest?
    What does a referee do in a football match?
    Why do people celebrate the new year?
    How does a camera lens focus?
    What makes dough rise?
    Why do languages change over time?
    How do plants know which way is up?
    How much screen time is healthy for teenagers?
    Why are some numbers considered lucky?
    How do submarines dive and come back up?
    What is the point of studying history?
    How do recycling plants sort materials?
    What makes a city good for cycling?
    Why do people procrastinate?
    How do birds find their way when they migrate?
    What makes a good team leader?
    Why is the Dead Sea so salty?
    How do fireworks get their colors?
    """
)
CONSTRAINT_TEMPLATES = _lines(
    """
    Answer in exactly three sentences: {q}
    In one sentence: {q}
    Answer in no more than 30 words. {q}
    Explain like I'm five: {q}
    Reply with three bullet points only. {q}
    {q} Answer in the style of a sports commentator.
    {q} Answer in two short paragraphs; start the second one with "In short,".
    Without using any technical terms, answer this: {q}
    Answer as a pirate would: {q}
    Respond as a short dialogue between a student and a teacher: {q}
    System: You are a concise assistant. Answer in at most two sentences.\\nUser: {q}
    [Instructions: answer as a friendly teacher, in plain words, under 80 words.]\\n{q}
    You are a helpful assistant who always ends with a follow-up question. {q}
    Give a yes-or-no style summary first, then the details: {q}
    """
)


def _role_family(side: Side) -> list[list[str]]:
    r = side.rng
    roles = []
    for role, requests in side.take("role.roles", ROLES, lambda x: [(x[0],), *((q,) for q in x[1])]):
        for request in requests:
            for opener in ROLE_OPENERS:
                sep = r.choice([" ", " ", "\n"])
                roles.append(opener.format(r=role) + r.choice(ROLE_STYLES) + sep + request)
    constraints = [
        _t(t).format(q=q)
        for q in side.take("role.constraint_questions", CONSTRAINT_QUESTIONS, _one)
        for t in CONSTRAINT_TEMPLATES
    ]
    return [roles, constraints]


# --------------------------------------------------------------------------- composition


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    build: Callable[[Side], list[list[str]]]
    train_quota: int
    heldout_quota: int


FAMILIES = (
    Family("code", _code_family, 360, 44),
    Family("lists", _lists_family, 220, 26),
    Family("rewriting", _rewriting_family, 280, 34),
    Family("questions", _questions_family, 250, 30),
    Family("math", _math_family, 270, 32),
    Family("structured", _structured_family, 240, 28),
    Family("extraction", _extraction_family, 230, 28),
    Family("creative", _creative_family, 230, 28),
    Family("advice", _advice_family, 210, 25),
    Family("role", _role_family, 210, 25),
)


@dataclass(frozen=True, slots=True)
class Composition:
    train: dict[str, list[str]]
    heldout: dict[str, list[str]]
    heldout_markers: list[Marker]


def _draw(pools: list[list[str]], quota: int, rng: random.Random, taken: set[str]) -> list[str]:
    """Up to ``quota`` new prompts, round-robin over the shuffled pools."""
    queues = []
    for pool in pools:
        queue = list(dict.fromkeys(pool))
        rng.shuffle(queue)
        queues.append(queue)
    out: list[str] = []
    while len(out) < quota and any(queues):
        for queue in queues:
            while queue:
                prompt = queue.pop()
                if prompt not in taken:
                    taken.add(prompt)
                    out.append(prompt)
                    break
            if len(out) == quota:
                break
    return out


def _old_prompts() -> set[str]:
    return {
        line.strip()
        for path in OLD_PROMPT_FILES
        if path.exists()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    }


@functools.cache
def _composition() -> Composition:
    taken = _old_prompts()
    registry: dict[str, list[Marker]] = {}
    splits: dict[bool, dict[str, list[str]]] = {False: {}, True: {}}
    for heldout in (False, True):  # all training prompts first: held-out ones never repeat them
        for fam in FAMILIES:
            tag = "heldout" if heldout else "train"
            side = Side(heldout, random.Random(f"{SEED}:{fam.name}:{tag}"), registry)
            pools = [[p for p in pool if p.strip() and len(p) <= MAX_CHARS] for pool in fam.build(side)]
            quota = fam.heldout_quota if heldout else fam.train_quota
            splits[heldout][fam.name] = _draw(
                pools, quota, random.Random(f"{SEED}:draw:{fam.name}:{tag}"), taken
            )
    markers = [m for name in sorted(registry) for m in registry[name]]
    return Composition(splits[False], splits[True], markers)


def _interleave(groups: Sequence[Sequence[str]]) -> list[str]:
    """All prompts, each group spread evenly over the whole list."""
    keyed = [((i + 0.5) / len(group), g, p) for g, group in enumerate(groups) for i, p in enumerate(group)]
    return [p for _, _, p in sorted(keyed)]


def compose_by_family() -> dict[str, tuple[list[str], list[str]]]:
    """Family name -> (training prompts, held-out prompts)."""
    c = _composition()
    return {f.name: (list(c.train[f.name]), list(c.heldout[f.name])) for f in FAMILIES}


def compose() -> tuple[list[str], list[str]]:
    """(training prompts, held-out prompts), families interleaved."""
    c = _composition()
    names = [f.name for f in FAMILIES]
    return _interleave([c.train[n] for n in names]), _interleave([c.heldout[n] for n in names])


def heldout_materials() -> list[Marker]:
    """Held-out materials, each as the strings that all occur in a prompt built from it."""
    return list(_composition().heldout_markers)


def _write(path: Path, prompts: Sequence[str]) -> None:
    path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in prompts), encoding="utf-8")


def main() -> None:
    train, heldout = compose()
    _write(TRAIN_OUT, train)
    _write(HELDOUT_OUT, heldout)
    for name, (t, h) in compose_by_family().items():
        print(f"{name:<11} train {len(t):>5}  heldout {len(h):>4}")
    print(f"{'total':<11} train {len(train):>5}  heldout {len(heldout):>4}")
    print(f"wrote {TRAIN_OUT} and {HELDOUT_OUT}")


if __name__ == "__main__":
    main()
