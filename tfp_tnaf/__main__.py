from tfp_tnaf.cli import main

main()
