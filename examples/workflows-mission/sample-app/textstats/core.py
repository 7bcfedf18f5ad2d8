"""Word-level statistics over a text."""

import re
from collections import Counter

WORD = re.compile(r"[a-z0-9']+")


def words(text):
    """The words of a text, lower-cased, punctuation dropped."""
    return WORD.findall(text.lower())


def top_words(text, n=3):
    """The n most common words with their counts, most common first."""
    return Counter(words(text)).most_common(n)


def average_word_length(text):
    """The mean number of characters per word."""
    found = words(text)
    return sum(len(w) for w in found) / len(found)


def reading_time_minutes(text, words_per_minute=200):
    """Minutes needed to read the text, rounded up to the next whole minute."""
    count = len(words(text))
    return -(-count // words_per_minute)
