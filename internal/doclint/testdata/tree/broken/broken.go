package broken

}
