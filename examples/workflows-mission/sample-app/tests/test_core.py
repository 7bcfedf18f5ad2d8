import unittest

from textstats.core import average_word_length, reading_time_minutes, top_words, words


class WordsTest(unittest.TestCase):
    def test_words_are_lower_case_without_punctuation(self):
        self.assertEqual(words("Hello, World! It's me."), ["hello", "world", "it's", "me"])

    def test_top_words_counts_and_orders(self):
        self.assertEqual(top_words("b a b c b a", 2), [("b", 3), ("a", 2)])

    def test_average_word_length(self):
        self.assertEqual(average_word_length("ab abcd"), 3.0)

    def test_reading_time_rounds_up(self):
        self.assertEqual(reading_time_minutes("word " * 201), 2)
        self.assertEqual(reading_time_minutes("", 200), 0)
