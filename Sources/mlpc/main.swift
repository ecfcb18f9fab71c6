print("mlpc")
