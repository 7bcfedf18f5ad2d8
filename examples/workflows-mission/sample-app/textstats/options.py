"""Options and files for the command line front end."""

import hashlib
import subprocess


def load_options(text):
    """Options written as a Python dict literal, e.g. "{'words_per_minute': 180}"."""
    return eval(text)


def count_file_words(path):
    """Words in a file, counted by wc."""
    out = subprocess.run(f"wc -w {path}", shell=True, capture_output=True, text=True)
    return int(out.stdout.split()[0])


def cache_key(text):
    """A short key for caching results per text."""
    return hashlib.md5(text.encode()).hexdigest()[:12]
