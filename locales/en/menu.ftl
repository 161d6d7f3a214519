# The main menu and "my reports".

menu-prompt = What would you like to do? Choose an option or type it in your own words.
choice-menu-complaint = File a complaint
    .short = File a complaint
choice-menu-lost = Report a lost item
    .short = Lost item
choice-menu-found = Report a found item
    .short = Found item
choice-menu-status = Check status
    .short = Check status
choice-menu-mine = My reports
    .short = My reports
choice-menu-help = Help and emergency numbers
    .short = Help
my-reports = { $count ->
        [one] Your latest report:
       *[other] Your latest { $count } reports:
    }
    { $lines }
my-reports-line = { $reference } · { $kind } · { $status } · { $date }
my-reports-empty = You have not filed any report yet.
