from mgpt.cli import main

main()
