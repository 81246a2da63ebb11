node
  name = n
	key = "x
