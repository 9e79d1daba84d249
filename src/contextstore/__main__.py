from contextstore.cli import main

main()
