# tokenizer tests (fragment; filled by the tokenizer work)
