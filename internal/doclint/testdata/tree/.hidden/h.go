package h

func Undocumented() {}
