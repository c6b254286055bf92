"""Write the benchmark corpus: ``python bench/make_corpus.py /tmp/corpus --files 1000``.

One Fake-or-Real-shaped tree per format under ``ROOT/<format>/`` (see ``bench/_corpus.py``).
"""

from _corpus import main

if __name__ == "__main__":
    main()
