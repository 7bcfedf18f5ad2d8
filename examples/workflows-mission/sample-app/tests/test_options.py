import unittest

from textstats.options import cache_key, load_options


class OptionsTest(unittest.TestCase):
    def test_load_options_reads_a_dict_literal(self):
        self.assertEqual(load_options("{'words_per_minute': 180}"), {"words_per_minute": 180})

    def test_cache_key_is_short_and_stable(self):
        self.assertEqual(cache_key("abc"), cache_key("abc"))
        self.assertEqual(len(cache_key("abc")), 12)
