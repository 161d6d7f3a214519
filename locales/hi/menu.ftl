# मुख्य मेनू और "मेरी रिपोर्ट"।

menu-prompt = आप क्या करना चाहते हैं? कोई विकल्प चुनें या अपने शब्दों में लिखें।
choice-menu-complaint = शिकायत दर्ज करें
    .short = शिकायत दर्ज करें
choice-menu-lost = खोई हुई वस्तु की सूचना दें
    .short = खोई वस्तु
choice-menu-found = पाई गई वस्तु की सूचना दें
    .short = पाई गई वस्तु
choice-menu-status = स्थिति जानें
    .short = स्थिति जानें
choice-menu-mine = मेरी रिपोर्ट
    .short = मेरी रिपोर्ट
choice-menu-help = मदद और आपात नंबर
    .short = मदद
my-reports = { $count ->
        [one] आपकी सबसे नई रिपोर्ट:
       *[other] आपकी सबसे नई { $count } रिपोर्ट:
    }
    { $lines }
my-reports-line = { $reference } · { $kind } · { $status } · { $date }
my-reports-empty = आपने अभी तक कोई रिपोर्ट दर्ज नहीं की है।
