"""The facts the demo data set is made from: word lists written for negtune, no third-party text.

Why a module of its own: these lists are the data, ``negtune.data.demo_gen`` is how 4-option
questions are built from them. Editing a list changes ``data/demo/`` and its hashes: rerun
``python -m negtune.data.demo_gen`` (a test checks that the files match the generator).
"""
from __future__ import annotations

CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Japan", "Tokyo"), ("China", "Beijing"), ("Russia", "Moscow"), ("England", "London"),
    ("Egypt", "Cairo"), ("Greece", "Athens"), ("Portugal", "Lisbon"), ("Ireland", "Dublin"),
    ("Austria", "Vienna"), ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"),
    ("Denmark", "Copenhagen"), ("Poland", "Warsaw"), ("Hungary", "Budapest"), ("Thailand", "Bangkok"),
    ("South Korea", "Seoul"), ("India", "New Delhi"), ("Kenya", "Nairobi"), ("Argentina", "Buenos Aires"),
    ("Peru", "Lima"), ("Mexico", "Mexico City"), ("Canada", "Ottawa"), ("Cuba", "Havana"),
    ("Turkey", "Ankara"), ("Iran", "Tehran"), ("Belgium", "Brussels"), ("the Netherlands", "Amsterdam"),
    ("the Czech Republic", "Prague"), ("Australia", "Canberra"), ("the United States", "Washington"),
    ("Chile", "Santiago"), ("Colombia", "Bogota"), ("Vietnam", "Hanoi"), ("the Philippines", "Manila"),
    ("Indonesia", "Jakarta"), ("Switzerland", "Bern"), ("Scotland", "Edinburgh"), ("Wales", "Cardiff"),
    ("Ukraine", "Kyiv"), ("Romania", "Bucharest"), ("Bulgaria", "Sofia"), ("Serbia", "Belgrade"),
    ("Croatia", "Zagreb"), ("Iceland", "Reykjavik"), ("Estonia", "Tallinn"), ("Latvia", "Riga"),
    ("Lithuania", "Vilnius"), ("Saudi Arabia", "Riyadh"), ("Iraq", "Baghdad"), ("Syria", "Damascus"),
    ("Lebanon", "Beirut"), ("Pakistan", "Islamabad"), ("Afghanistan", "Kabul"), ("Nepal", "Kathmandu"),
    ("Malaysia", "Kuala Lumpur"), ("Singapore", "Singapore"), ("New Zealand", "Wellington"),
    ("Nigeria", "Abuja"), ("Ethiopia", "Addis Ababa"), ("Morocco", "Rabat"), ("Venezuela", "Caracas"),
    ("Uruguay", "Montevideo"), ("Jamaica", "Kingston"),
]

OPPOSITES = [
    ("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"), ("happy", "sad"),
    ("day", "night"), ("black", "white"), ("open", "closed"), ("old", "young"), ("tall", "short"),
    ("light", "dark"), ("hard", "soft"), ("wet", "dry"), ("full", "empty"), ("rich", "poor"),
    ("early", "late"), ("strong", "weak"), ("thick", "thin"), ("left", "right"), ("in", "out"),
    ("on", "off"), ("yes", "no"), ("good", "bad"), ("push", "pull"), ("win", "lose"),
    ("buy", "sell"), ("first", "last"), ("inside", "outside"), ("above", "below"), ("true", "false"),
    ("loud", "quiet"), ("clean", "dirty"), ("heavy", "light"), ("high", "low"), ("long", "short"),
    ("near", "far"), ("love", "hate"), ("begin", "end"), ("north", "south"), ("east", "west"),
]

PLURALS = [
    ("mouse", "mice"), ("child", "children"), ("foot", "feet"), ("tooth", "teeth"), ("man", "men"),
    ("woman", "women"), ("goose", "geese"), ("person", "people"), ("cat", "cats"), ("dog", "dogs"),
    ("box", "boxes"), ("bus", "buses"), ("baby", "babies"), ("city", "cities"), ("knife", "knives"),
    ("leaf", "leaves"), ("wolf", "wolves"), ("church", "churches"), ("glass", "glasses"), ("fox", "foxes"),
    ("book", "books"), ("tree", "trees"), ("car", "cars"), ("house", "houses"), ("apple", "apples"),
    ("ox", "oxen"), ("potato", "potatoes"), ("tomato", "tomatoes"), ("hero", "heroes"), ("wife", "wives"),
    ("bird", "birds"), ("chair", "chairs"), ("table", "tables"), ("horse", "horses"), ("girl", "girls"),
    ("boy", "boys"), ("flower", "flowers"), ("river", "rivers"), ("party", "parties"), ("story", "stories"),
    ("lady", "ladies"), ("dish", "dishes"), ("brush", "brushes"), ("watch", "watches"), ("half", "halves"),
    ("shelf", "shelves"), ("loaf", "loaves"), ("louse", "lice"), ("cactus", "cacti"), ("day", "days"),
]

# (thing, colour). Questions read "What color is {thing}?"
COLOURS = [
    ("the sky on a clear day", "blue"), ("grass", "green"), ("a banana", "yellow"), ("snow", "white"),
    ("coal", "black"), ("a ripe tomato", "red"), ("an orange", "orange"), ("a lemon", "yellow"),
    ("milk", "white"), ("blood", "red"), ("a carrot", "orange"), ("the sea", "blue"),
    ("a leaf in summer", "green"), ("a strawberry", "red"), ("chocolate", "brown"), ("a crow", "black"),
    ("a fire truck", "red"), ("a polar bear", "white"), ("a frog", "green"),
    ("a cucumber", "green"), ("charcoal", "black"), ("a cloud", "white"), ("a lime", "green"),
    ("a pumpkin", "orange"), ("an eggplant", "purple"), ("wood", "brown"),
]
COLOUR_NAMES = ["red", "blue", "green", "yellow", "white", "black", "orange", "brown", "purple", "pink"]

SOUNDS = [
    ("dog", "bark"), ("cat", "meow"), ("cow", "moo"), ("duck", "quack"), ("sheep", "baa"),
    ("lion", "roar"), ("snake", "hiss"), ("horse", "neigh"), ("pig", "oink"), ("owl", "hoot"),
    ("bee", "buzz"), ("frog", "croak"), ("mouse", "squeak"), ("wolf", "howl"), ("rooster", "crow"),
    ("bird", "chirp"), ("donkey", "bray"), ("turkey", "gobble"),
]

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve"]

PAST_TENSE = [
    ("go", "went"), ("eat", "ate"), ("see", "saw"), ("run", "ran"), ("take", "took"), ("give", "gave"),
    ("write", "wrote"), ("drink", "drank"), ("swim", "swam"), ("sing", "sang"), ("buy", "bought"),
    ("think", "thought"), ("catch", "caught"), ("teach", "taught"), ("fly", "flew"), ("drive", "drove"),
    ("speak", "spoke"), ("break", "broke"), ("sleep", "slept"), ("come", "came"), ("make", "made"),
    ("say", "said"), ("find", "found"), ("know", "knew"), ("fall", "fell"), ("begin", "began"),
    ("bring", "brought"), ("build", "built"), ("choose", "chose"), ("draw", "drew"), ("feel", "felt"),
    ("forget", "forgot"), ("grow", "grew"), ("hear", "heard"), ("hold", "held"), ("keep", "kept"),
    ("leave", "left"), ("lose", "lost"), ("meet", "met"), ("pay", "paid"), ("ride", "rode"),
    ("sell", "sold"), ("send", "sent"), ("sit", "sat"), ("stand", "stood"), ("tell", "told"),
    ("win", "won"), ("wear", "wore"), ("throw", "threw"), ("steal", "stole"), ("walk", "walked"),
]

# (category noun, members, non-members); questions read "Which of these is a {noun}?"
KINDS = {
    "fruit": (["apple", "banana", "orange", "pear", "grape", "peach", "cherry", "mango", "lemon", "plum"],
              ["chair", "hammer", "shoe", "window", "pencil", "car", "spoon", "brick", "shirt", "cloud"]),
    "animal": (["dog", "cat", "horse", "lion", "tiger", "rabbit", "elephant", "monkey", "bear", "sheep"],
               ["table", "rock", "spoon", "cup", "door", "lamp", "book", "bottle", "coin", "sock"]),
    "color": (["red", "blue", "green", "yellow", "purple", "pink", "brown", "orange", "black", "white"],
              ["table", "river", "dog", "bread", "music", "sleep", "paper", "chair", "stone", "shoe"]),
    "vehicle": (["car", "bus", "truck", "train", "bicycle", "boat", "plane", "taxi", "tram", "ship"],
                ["apple", "pillow", "tree", "cup", "soup", "flower", "pencil", "cat", "carpet", "cheese"]),
    "musical instrument": (["piano", "guitar", "violin", "drum", "flute", "trumpet", "harp", "cello"],
                           ["spoon", "carrot", "shoe", "pillow", "window", "bread", "lamp", "sock"]),
}

LANGUAGES = [
    ("France", "French"), ("Germany", "German"), ("Italy", "Italian"), ("Spain", "Spanish"),
    ("Japan", "Japanese"), ("China", "Chinese"), ("Russia", "Russian"), ("Greece", "Greek"),
    ("Portugal", "Portuguese"), ("Poland", "Polish"), ("Turkey", "Turkish"), ("Sweden", "Swedish"),
    ("Finland", "Finnish"), ("Korea", "Korean"), ("Thailand", "Thai"), ("Vietnam", "Vietnamese"),
    ("the Netherlands", "Dutch"), ("Hungary", "Hungarian"), ("Denmark", "Danish"), ("Norway", "Norwegian"),
    ("Israel", "Hebrew"), ("Brazil", "Portuguese"), ("Mexico", "Spanish"), ("England", "English"),
    ("Argentina", "Spanish"), ("Austria", "German"), ("Iran", "Persian"), ("Ukraine", "Ukrainian"),
    ("Egypt", "Arabic"), ("Saudi Arabia", "Arabic"), ("Czechia", "Czech"), ("Romania", "Romanian"),
    ("Indonesia", "Indonesian"), ("Australia", "English"), ("Peru", "Spanish"), ("Iceland", "Icelandic"),
    ("Bulgaria", "Bulgarian"), ("Croatia", "Croatian"), ("Serbia", "Serbian"), ("Canada", "English"),
]

FEMININE = [
    ("king", "queen"), ("prince", "princess"), ("actor", "actress"), ("husband", "wife"),
    ("father", "mother"), ("brother", "sister"), ("uncle", "aunt"), ("son", "daughter"), ("boy", "girl"),
    ("man", "woman"), ("nephew", "niece"), ("grandfather", "grandmother"), ("waiter", "waitress"),
    ("emperor", "empress"), ("gentleman", "lady"), ("lion", "lioness"), ("duke", "duchess"),
    ("god", "goddess"), ("host", "hostess"), ("groom", "bride"),
]

COMPARATIVES = [
    ("good", "better"), ("bad", "worse"), ("big", "bigger"), ("small", "smaller"), ("fast", "faster"),
    ("slow", "slower"), ("happy", "happier"), ("tall", "taller"), ("old", "older"), ("young", "younger"),
    ("long", "longer"), ("short", "shorter"), ("hot", "hotter"), ("cold", "colder"), ("easy", "easier"),
    ("far", "farther"), ("strong", "stronger"), ("heavy", "heavier"), ("rich", "richer"), ("funny", "funnier"),
]

BABIES = [
    ("dog", "puppy"), ("cat", "kitten"), ("cow", "calf"), ("sheep", "lamb"), ("horse", "foal"),
    ("duck", "duckling"), ("frog", "tadpole"), ("bear", "cub"), ("pig", "piglet"), ("kangaroo", "joey"),
    ("goose", "gosling"), ("swan", "cygnet"), ("owl", "owlet"), ("deer", "fawn"), ("hen", "chick"),
]

# (animal, home)
HOMES = [
    ("bird", "nest"), ("bee", "hive"), ("dog", "kennel"), ("horse", "stable"), ("pig", "sty"),
    ("spider", "web"), ("rabbit", "burrow"), ("fish", "water"), ("bear", "den"),
]
