from contextstore._admin.cli import main

main()
