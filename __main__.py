from mgpt.cli import main

if __name__ == "__main__":  # worker processes import the main module as __mp_main__
    main()
