# नागरिकों को सूचनाएं, थाने को अलर्ट, चैनल के संदेश।

push-status =
    { $reference } पर नई जानकारी: { $status }।
    थाना: { $station }
push-note = पुलिस की टिप्पणी: { $note }
push-fir = एफआईआर संख्या: { $fir }
push-transferred = आपकी रिपोर्ट { $reference } { $station } को भेज दी गई है।
push-match = पाई गई एक वस्तु आपकी खोई वस्तु की रिपोर्ट { $reference } से मेल खा सकती है। { $station } आपसे संपर्क करेगा।
station-alert = { $station } के लिए नई { $kind } { $reference }। प्रकार: { $category }।
station-alert-transferred = { $station } को सौंपी गई { $kind } { $reference }। प्रकार: { $category }।
station-match = संभावित मिलान: पाई गई वस्तु की रिपोर्ट { $found } और खोई वस्तु की रिपोर्ट { $lost } ({ $category })। कृपया दोनों रिपोर्ट देखें।
group-chat-only-private = सेवा निजी चैट में काम करती है। कृपया मुझे सीधे संदेश भेजें।
callback-expired = यह मेनू पुराना हो गया है।
cmd-start = शुरू करें या मुख्य मेनू पर जाएं
cmd-help = मदद और आपात नंबर
cmd-cancel = जो कर रहे हैं उसे रद्द करें
cmd-language = भाषा बदलें
cmd-status = रिपोर्ट की स्थिति जानें
share-location = अपनी लोकेशन भेजें
share-contact = अपना नंबर भेजें
