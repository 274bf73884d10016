from pettycash.cli import main

main()
