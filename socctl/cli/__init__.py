"""The command line: click + rich only. Commands parse, call the library, render."""
