"""The command-line programs: the only code that reads argv and the environment, prints and chooses exit codes."""
