"""The language track: text sources (Bible, WordNet), candidate benchmark splits and text classifiers."""
